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
"""

from __future__ import annotations

from typing import Any

# KEYS: due, inflight, drainer. ARGV: job id, now, drainer token, drainer ttl (ms).
# Joins the job as due now, unless it is already due at some time or in flight. Returns 1
# when the caller has just become the provider's drainer (it must start one), else 0.
_JOIN = """
local due, inflight, drainer = KEYS[1], KEYS[2], KEYS[3]
local job, now = ARGV[1], tonumber(ARGV[2])
if not redis.call('ZSCORE', due, job) and not redis.call('ZSCORE', inflight, job) then
  redis.call('ZADD', due, now, job)
end
if redis.call('SET', drainer, ARGV[3], 'NX', 'PX', ARGV[4]) then
  return 1
end
return 0
"""

# KEYS: due, inflight. ARGV: now, window, size, lease.
# Nothing unless some job is due by `now`; then every job due by now + window (the longest
# overdue first), up to `size`, moved in flight until now + lease. Claims that lapsed first
# go back to the due set, due at once.
_CLAIM = """
local due, inflight = KEYS[1], KEYS[2]
local now, window, size, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for _, job in ipairs(redis.call('ZRANGEBYSCORE', inflight, '-inf', now)) do
  redis.call('ZREM', inflight, job)
  redis.call('ZADD', due, now, job)
end
local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
if #first == 0 or tonumber(first[2]) > now then
  return {}
end
local claimed = redis.call('ZRANGEBYSCORE', due, '-inf', now + window, 'LIMIT', 0, size)
for _, job in ipairs(claimed) do
  redis.call('ZREM', due, job)
  redis.call('ZADD', inflight, now + lease, job)
end
return claimed
"""

# KEYS: due, inflight. ARGV: job id, due time.
_SCHEDULE = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
"""

# KEYS: due, inflight, drainer. ARGV: token, ttl (ms).
# The drainer's turn: 2 = it is still the drainer and jobs remain (its lease renewed),
# 1 = nothing is left, so it stepped down, 0 = another drainer has taken over.
_TURN = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return 0
end
if redis.call('ZCARD', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[3])
  return 1
end
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 2
"""

STILL_DRAINER, STEPPED_DOWN, REPLACED = 2, 1, 0


def _keys(key: str) -> tuple[str, str, str]:
    return key, f"{key}:inflight", f"{key}:drainer"


def _ms(seconds: float) -> str:
    return str(max(1, int(seconds * 1000)))


def join(redis: Any, key: str, job_id: str, now: float, token: str, ttl: float) -> bool:
    """Mark `job_id` due now (unless it already has a due time or is in flight); True when
    no drainer was running and the caller's `token` now holds the role for `ttl` seconds."""
    return bool(redis.eval(_JOIN, 3, *_keys(key), job_id, repr(now), token, _ms(ttl)))


def claim(redis: Any, key: str, now: float, window: float, size: int, lease: float) -> list[str]:
    """The jobs of one batch: none unless one is due by `now`; else up to `size` due by
    `now + window`, in flight for `lease` seconds."""
    due, inflight, _ = _keys(key)
    reply = redis.eval(_CLAIM, 2, due, inflight, repr(now), repr(window), str(size), repr(lease))
    return [x.decode() if isinstance(x, bytes) else str(x) for x in reply]


def schedule(redis: Any, key: str, job_id: str, at: float) -> None:
    """The job's next fetch is due at `at` (it is no longer in flight)."""
    due, inflight, _ = _keys(key)
    redis.eval(_SCHEDULE, 2, due, inflight, job_id, repr(at))


def drop(redis: Any, key: str, job_id: str) -> None:
    """The job's polling is over."""
    due, inflight, _ = _keys(key)
    redis.zrem(due, job_id)
    redis.zrem(inflight, job_id)


def turn(redis: Any, key: str, token: str, ttl: float) -> int:
    """STILL_DRAINER (lease renewed for `ttl` s), STEPPED_DOWN (no job left) or REPLACED."""
    return int(redis.eval(_TURN, 3, *_keys(key), token, _ms(ttl)))
