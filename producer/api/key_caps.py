"""Each API key's fair share of the API: its queued jobs, its request rate, its open event streams.

Every cap is a key attribute (`songqueue keys create/update --max-queued --request-rate
--max-streams`) with a fleet-wide default (SONGQUEUE_KEY_MAX_QUEUED, _KEY_REQUEST_RATE,
_KEY_REQUEST_BURST, _KEY_MAX_STREAMS), and every count lives in Redis, so the caps hold
across every API process together:

- **Queued jobs**: the key's jobs not yet submitted nor ended (QUEUED), a set the job store
  keeps with each state change (`keys.key_queued`). A submit at the cap is refused at the
  door: 429 naming the cap. Two submits racing for the last place may both pass (the count
  is read, not reserved): the cap can be passed by the API's concurrent submits of one key.
- **Request rate**: a token bucket per key (`key_admit.lua`: the providers' `token_bucket.lua`
  arithmetic on the key's own bucket, in the same round trip that reads the key's record and
  checks its scope), taken by the edge for every route that needs a key, before the body is
  read: 429 with Retry-After, the seconds until a token is there.
- **Open event streams**: each stream holds a lease in the key's set of streams
  (`stream_lease.lua`), `LEASE_SECONDS` long and renewed every `KEY_CHECK_SECONDS` while it
  is open, dropped when it closes. An API process that dies leaves leases that lapse by
  themselves, so no count leaks. At the cap, 429.
"""

from __future__ import annotations

import math
import uuid

import redis
import redis.asyncio as aioredis

from producer.api.problems import Problem
from producer.core.settings import Settings
from producer.core.store import keys, scripts
from producer.core.store.api_keys import ApiKey, KeyStore, load

# An open stream re-reads its key (revoked?) and renews its lease this often.
KEY_CHECK_SECONDS = 2.0
# A lease lapses this long after its last renewal: several missed renewals, not one.
LEASE_SECONDS = 15.0


def _describe(key: ApiKey) -> str:
    return f"key {key.id} ({key.name})"


async def admit(client: aioredis.Redis, store: KeyStore, settings: Settings, key_id: str,
                scope: str) -> tuple[ApiKey | None, Problem | None]:
    """One request of key `key_id` on a route that needs `scope`, in one Redis round trip made
    from the event loop (`client`: the job store's Redis for asyncio, producer/api/state.py):
    (the key, None) when it may go on; (None, None) for no such key or a revoked one (a 401);
    (the key, a 403 or 429 Problem) when it lacks the scope or is over its request rate."""
    answer = await scripts.run_async(client, "key_admit", *_admit_call(store, settings, key_id, scope))
    return _admitted(answer, settings, scope)


def _admit_call(store: KeyStore, settings: Settings, key_id: str, scope: str) -> tuple[list[str], list[object]]:
    return ([store.record_key(key_id), keys.key_rate(settings.key_prefix, key_id)],
            [scope, settings.key_request_rate, settings.key_request_burst])


def _admitted(answer: list[bytes], settings: Settings, scope: str) -> tuple[ApiKey | None, Problem | None]:
    if not answer:
        return None, None
    raw, verdict_raw = answer
    verdict = verdict_raw.decode()
    if verdict == "revoked":
        return None, None
    key = load(raw)
    if verdict == "forbidden":
        return key, Problem(403, f"this key lacks the {scope!r} scope")
    wait = float(verdict)
    return key, rate_problem(key, settings, wait) if wait > 0 else None


def rate_problem(key: ApiKey, settings: Settings, wait: float) -> Problem:
    rate = key.request_rate if key.request_rate is not None else settings.key_request_rate
    return Problem(429, f"{_describe(key)}: over its request rate of {rate:g}/s (request_rate); "
                        f"try again in {wait:.1f} s", {"Retry-After": str(max(1, math.ceil(wait)))})


def check_queued(client: redis.Redis, settings: Settings, key: ApiKey) -> None:
    """429 when the key has its cap of jobs queued (not yet submitted nor ended)."""
    cap = key.max_queued if key.max_queued is not None else settings.key_max_queued
    queued = int(client.zcard(keys.key_queued(settings.key_prefix, key.id)))
    if queued >= cap:
        raise Problem(429, f"{_describe(key)}: {queued} jobs queued, its cap of queued jobs is {cap} (max_queued); "
                           "submit again once some have started")


def open_stream(client: redis.Redis, settings: Settings, key: ApiKey) -> str:
    """A lease for one more open event stream of the key; 429 at its cap."""
    lease = uuid.uuid4().hex
    if not renew_stream(client, settings, key, lease):
        cap = key.max_streams if key.max_streams is not None else settings.key_max_streams
        raise Problem(429, f"{_describe(key)}: {cap} event streams open, its cap (max_streams); close one first",
                      {"Retry-After": str(math.ceil(KEY_CHECK_SECONDS))})
    return lease


def renew_stream(client: redis.Redis, settings: Settings, key: ApiKey, lease: str) -> bool:
    """Take or renew `lease`; False when the key is at its cap without it."""
    cap = key.max_streams if key.max_streams is not None else settings.key_max_streams
    return bool(scripts.run(client, "stream_lease", [keys.key_streams(settings.key_prefix, key.id)],
                            [lease, cap, LEASE_SECONDS]))


def close_stream(client: redis.Redis, settings: Settings, key: ApiKey, lease: str) -> None:
    client.zrem(keys.key_streams(settings.key_prefix, key.id), lease)
