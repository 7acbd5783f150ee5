"""What the poll schedule learns from finished jobs, kept in Redis for the whole fleet.

Two capped lists (LPUSH then LTRIM, newest first), so memory stays bounded and old
behaviour ages out as the upstream changes:

- `keys.poll_durations(prefix, provider, model)`: the latest `DURATIONS_KEPT` generation
  times of a provider's model, seconds from submit to finish;
- `keys.poll_progress_errors(prefix, provider)`: the latest `ERRORS_KEPT` relative errors
  of that provider's progress: |predicted finish - finish| / (finish - submit), the
  prediction being the linear one made at a job's last poll with 0 < progress < 100.

Reset: delete the keys (`redis-cli --scan --pattern '{prefix}:polllearn:*' | xargs redis-cli del`);
the schedule falls back to its rule without history until enough jobs finish again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from producer.core.store import keys

DURATIONS_KEPT = 200
ERRORS_KEPT = 50


@dataclass(frozen=True)
class History:
    durations: tuple[float, ...]  # seconds, newest first
    progress_errors: tuple[float, ...]  # relative, newest first


def record(redis: Any, prefix: str, provider: str, model: str, seconds: float,
           progress_error: float | None) -> None:
    """One finished job: its generation time, and its progress' error when it had any."""
    pipe = redis.pipeline(transaction=False)
    durations = keys.poll_durations(prefix, provider, model)
    pipe.lpush(durations, f"{seconds:.3f}")
    pipe.ltrim(durations, 0, DURATIONS_KEPT - 1)
    if progress_error is not None:
        errors = keys.poll_progress_errors(prefix, provider)
        pipe.lpush(errors, f"{progress_error:.4f}")
        pipe.ltrim(errors, 0, ERRORS_KEPT - 1)
    pipe.execute()


def read(redis: Any, prefix: str, provider: str, model: str) -> History:
    pipe = redis.pipeline(transaction=False)
    pipe.lrange(keys.poll_durations(prefix, provider, model), 0, -1)
    pipe.lrange(keys.poll_progress_errors(prefix, provider), 0, -1)
    durations, errors = pipe.execute()
    return History(tuple(float(d) for d in durations), tuple(float(e) for e in errors))
