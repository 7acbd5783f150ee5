"""The due set of a batch-polled provider: which jobs are due a fetch, and when.

Three keys per provider, all under `keys.poll_due(prefix, provider)` (one Redis Cluster slot
with the rest of the job store when the prefix is a hash tag):

- `{key}`: job id -> when its next fetch is due (a sorted set);
- `{key}:inflight`: job id -> when its claim lapses: the jobs a drain has taken and not yet
  given a next due time. A drainer that dies mid-batch leaves them there, and the next claim
  puts the lapsed ones back in the due set, so none is lost;
- `{key}:drainer`: the token of the provider's one drainer (a string with an expiry), so a
  job that joins knows whether to start one.

Every operation that reads one key and writes another is one Lua call, so two workers never
claim the same job, and a job that joins as the drainer stops either finds it or starts one.
The scripts are producer/core/store/lua/poll_due_*.lua.
"""

from __future__ import annotations

from typing import Any

from producer.core.store import scripts

# The answers of `turn` (poll_due_turn.lua).
STILL_DRAINER, STEPPED_DOWN, REPLACED = 2, 1, 0


def _keys(key: str) -> tuple[str, str, str]:
    return key, f"{key}:inflight", f"{key}:drainer"


def _ms(seconds: float) -> str:
    return str(max(1, int(seconds * 1000)))


def join(redis: Any, key: str, job_id: str, now: float, token: str, ttl: float) -> bool:
    """Mark `job_id` due now (unless it already has a due time or is in flight); True when
    no drainer was running and the caller's `token` now holds the role for `ttl` seconds."""
    return bool(scripts.run(redis, "poll_due_join", _keys(key), [job_id, repr(now), token, _ms(ttl)]))


def claim(redis: Any, key: str, now: float, window: float, size: int, lease: float) -> list[str]:
    """The jobs of one batch: none unless one is due by `now`; else up to `size` due by
    `now + window`, in flight for `lease` seconds."""
    due, inflight, _ = _keys(key)
    reply = scripts.run(redis, "poll_due_claim", [due, inflight], [repr(now), repr(window), str(size), repr(lease)])
    return [x.decode() if isinstance(x, bytes) else str(x) for x in reply]


def schedule(redis: Any, key: str, job_id: str, at: float) -> None:
    """The job's next fetch is due at `at` (it is no longer in flight)."""
    due, inflight, _ = _keys(key)
    scripts.run(redis, "poll_due_schedule", [due, inflight], [job_id, repr(at)])


def drop(redis: Any, key: str, job_id: str) -> None:
    """The job's polling is over."""
    due, inflight, _ = _keys(key)
    redis.zrem(due, job_id)
    redis.zrem(inflight, job_id)


def turn(redis: Any, key: str, token: str, ttl: float) -> int:
    """STILL_DRAINER (lease renewed for `ttl` s), STEPPED_DOWN (no job left) or REPLACED."""
    return int(scripts.run(redis, "poll_due_turn", _keys(key), [token, _ms(ttl)]))
