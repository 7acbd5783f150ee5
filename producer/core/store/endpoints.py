"""Callback receivers by origin (producer.core.callbacks.origin): their health and their secret's generation.

One hash per origin, `{prefix}:callbacks:endpoint:{origin}`, and a set of the origins:

| field           | meaning                                                                  |
|-----------------|--------------------------------------------------------------------------|
| `state`         | `enabled` (absent too) or `disabled`                                     |
| `reason`        | why it is disabled                                                       |
| `failing_since` | the first failed delivery since the last success (absent: not failing)   |
| `last_success`  | the last delivered attempt                                               |
| `generation`    | the receiver secret's generation (0 when absent; `rotate` adds one)      |
| `rotated_at`    | when the generation last moved: the previous one signs too for a while   |

Health follows the Standard Webhooks advice: an endpoint that has failed every delivery for
SONGQUEUE_CALLBACK_DISABLE_AFTER, or that answered 410 Gone, is disabled; its deliveries are
then skipped (recorded as such) until an operator enables it again. Each write is one
command or a MULTI of independent fields: two workers recording at once can only agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import redis

from producer.core.store import keys

ENABLED = "enabled"
DISABLED = "disabled"


@dataclass(frozen=True)
class Endpoint:
    origin: str
    state: str = ENABLED
    reason: str = ""
    failing_since: float | None = None
    last_success: float | None = None
    generation: int = 0
    rotated_at: float | None = None

    @property
    def disabled(self) -> bool:
        return self.state == DISABLED


def _float(value: bytes | None) -> float | None:
    return float(value) if value is not None else None


def get(client: redis.Redis, prefix: str, origin: str) -> Endpoint:
    raw = {k.decode(): v for k, v in client.hgetall(keys.callback_endpoint(prefix, origin)).items()}
    return Endpoint(origin=origin, state=(raw.get("state") or ENABLED.encode()).decode(),
                    reason=(raw.get("reason") or b"").decode(), failing_since=_float(raw.get("failing_since")),
                    last_success=_float(raw.get("last_success")), generation=int(raw.get("generation") or 0),
                    rotated_at=_float(raw.get("rotated_at")))


def every(client: redis.Redis, prefix: str) -> list[Endpoint]:
    """Every origin songqueue has delivered to (or rotated a secret of), sorted."""
    return [get(client, prefix, o.decode()) for o in sorted(client.smembers(keys.callback_endpoints(prefix)))]


def disabled_count(client: redis.Redis, prefix: str) -> int:
    return sum(1 for e in every(client, prefix) if e.disabled)


def succeeded(client: redis.Redis, prefix: str, origin: str, now: float) -> None:
    key = keys.callback_endpoint(prefix, origin)
    pipe = client.pipeline(transaction=True)
    pipe.sadd(keys.callback_endpoints(prefix), origin)
    pipe.hset(key, "last_success", now)
    pipe.hdel(key, "failing_since")
    pipe.execute()


def failed(client: redis.Redis, prefix: str, origin: str, now: float, disable_after: float) -> Endpoint:
    """Note a failed delivery; disables the origin once it has failed for `disable_after` seconds. Returns it."""
    key = keys.callback_endpoint(prefix, origin)
    pipe = client.pipeline(transaction=True)
    pipe.sadd(keys.callback_endpoints(prefix), origin)
    pipe.hsetnx(key, "failing_since", now)
    pipe.execute()
    endpoint = get(client, prefix, origin)
    if endpoint.failing_since is not None and now - endpoint.failing_since >= disable_after and not endpoint.disabled:
        disable(client, prefix, origin, f"failing since {_iso(endpoint.failing_since)} "
                                        f"(more than {disable_after:g}s)")
        return get(client, prefix, origin)
    return endpoint


def disable(client: redis.Redis, prefix: str, origin: str, reason: str) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.sadd(keys.callback_endpoints(prefix), origin)
    pipe.hset(keys.callback_endpoint(prefix, origin), mapping={"state": DISABLED, "reason": reason})
    pipe.execute()


def enable(client: redis.Redis, prefix: str, origin: str) -> bool:
    """Enable a disabled origin (its failure clock starts over); False when songqueue does not know it."""
    if not client.sismember(keys.callback_endpoints(prefix), origin):
        return False
    key = keys.callback_endpoint(prefix, origin)
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, "state", ENABLED)
    pipe.hdel(key, "reason", "failing_since")
    pipe.execute()
    return True


def rotate(client: redis.Redis, prefix: str, origin: str, now: float) -> int:
    """Start the next generation of the origin's secret; returns it."""
    key = keys.callback_endpoint(prefix, origin)
    pipe = client.pipeline(transaction=True)
    pipe.sadd(keys.callback_endpoints(prefix), origin)
    pipe.hincrby(key, "generation", 1)
    pipe.hset(key, "rotated_at", now)
    generation = int(pipe.execute()[1])
    return generation


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
