"""Every Redis key of the job store, named in one place."""

from __future__ import annotations


def job(prefix: str, job_id: str) -> str:
    return f"{prefix}:job:{job_id}"


def all_jobs(prefix: str) -> str:
    """Sorted set of every job id, scored by creation time."""
    return f"{prefix}:jobs"


def jobs_in_state(prefix: str, state: str) -> str:
    """Sorted set of the job ids now in `state`, scored by when they entered it."""
    return f"{prefix}:state:{state}"


def idempotency(prefix: str, key: str) -> str:
    return f"{prefix}:idem:{key}"


def due(prefix: str) -> str:
    """Sorted set of live job ids, scored by `next_check_at`: the watchdog's work list."""
    return f"{prefix}:due"


def watchdog_lock(prefix: str) -> str:
    return f"{prefix}:watchdog:lock"
