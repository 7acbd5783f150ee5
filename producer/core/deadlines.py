"""A job's own deadline (`Cancel-After`): when the caller stops wanting its songs.

Given at submit as seconds from now, a duration ("90s", "10m", "1h30m") or a time (RFC 3339 /
ISO 8601 with a zone), it is stored on the record as an absolute time, `cancel_after`. What
happens when it passes depends on what it would cost to stop (docs/jobs.md#deadlines):

- not yet submitted upstream: the job ends CANCELLED, `deadline_before_submit`, nothing charged;
- submitted: the job ends TIMED_OUT, `deadline_after_submit`, its charge kept on the record
  (the relay bills the task whether or not songqueue waits for it);
- a synchronous provider's call (MiniMax) that started before the deadline is let finish: its
  songs are already paid for when they arrive.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from producer.core.models.job_record import JobRecord

# A deadline further out than this is a mistake (a time in milliseconds, a year typed wrong).
MAX_SECONDS = 30 * 24 * 3600

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?")
_SHAPES = "seconds (90), a duration (90s, 10m, 1h30m) or a time with a zone (2026-12-05T18:00:00Z)"


def seconds_from(value: str | float | int) -> float:
    """Seconds from now that `value` names (a number, a duration or a time); ValueError
    (without a field name: the caller adds its own) for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"must be {_SHAPES}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        seconds = _parse_text(value.strip())
    if not seconds > 0:
        raise ValueError(f"must be in the future, got {value!r}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"must be within {MAX_SECONDS // 86400} days, got {value!r}")
    return seconds


def cancel_after(value: str | float | int | datetime | None, now: float) -> float | None:
    """The absolute time a deadline given at `now` names; None for none. A datetime is taken
    as it is, even if past: a playlist run's jobs share the deadline fixed when the run began."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return now + seconds_from(value)


def _parse_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.fullmatch(text)
    if text and match is not None and any(match.groups()):
        hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
        return hours * 3600 + minutes * 60 + seconds
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"must be {_SHAPES}, got {text[:40]!r}") from None
    if when.tzinfo is None:
        raise ValueError(f"a time needs its zone (Z or +01:00), got {text[:40]!r}")
    return when.timestamp() - datetime.now(when.tzinfo).timestamp()


def first(provider_deadline_at: float, cancel_after: float | None) -> float:
    """When polling a submitted job gives up: the provider's deadline, or the caller's if sooner."""
    return provider_deadline_at if cancel_after is None else min(provider_deadline_at, cancel_after)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def before_submit(record: JobRecord) -> tuple[str, str]:
    """The error (code, message) of a job whose deadline passed before it was submitted."""
    return ("deadline_before_submit",
            f"the job's deadline ({_when(record.cancel_after or 0)}) passed before it was submitted upstream; "
            "nothing was charged")


def after_submit(record: JobRecord) -> tuple[str, str]:
    """The error (code, message) of a submitted job whose deadline passed before its upstream answered."""
    return ("deadline_after_submit",
            f"the job's deadline ({_when(record.cancel_after or 0)}) passed while {record.provider} was still "
            f"generating; the call was charged ({record.cost:g}) and is kept on the record")

