"""Bounds on how often one step of a job may run: every step ends, one way or another.

A step's runs are counted on the job record before the work (`begin`), and its transient
faults as they happen (`fault`). So `runs - faults` is one more than the runs that died
without a word (a killed worker, a poison message redelivered by reject-on-worker-lost),
and it alone is held to SONGQUEUE_MAX_DELIVERIES: retries after transient faults do not
count as deliveries (they have their own bound, SONGQUEUE_MAX_TRANSIENT_ERRORS in a row).
All runs together, retries and watchdog resends included, are held to the sum of both, so
no step can be sent again forever.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from producer.core.models.job_record import JobRecord, JobState
from producer.core.settings import Settings
from workers import runtime


@dataclass(frozen=True)
class Spent:
    code: str
    message: str


def begin(job_id: str, key: str | tuple[str, ...], expect: Collection[JobState], check_in: float,
          run: int) -> JobRecord | None:
    """Count a run of step `key` (or of each step of a tuple: one download run fetches a
    song's assets, each bounded on its own, in one write) of the job's run `run`; the
    record as written, or None when the job moved on (or a replay began another run)."""
    counted = (key,) if isinstance(key, str) else key

    def count(r: JobRecord) -> None:
        for each in counted:
            r.attempts[each] = r.attempts.get(each, 0) + 1

    return runtime.store().apply(job_id, expect, mutate=count, check_in=check_in, run=run)


def fault(job_id: str, key: str, expect: Collection[JobState], run: int) -> None:
    """Count a transient fault of step `key` (the run ended by a retry, not by dying).

    The watchdog's deadline moves past the longest backoff, so a retry waiting on its
    countdown is not mistaken for a lost step and sent a second time."""
    def count(r: JobRecord) -> None:
        r.attempts[f"{key}:faults"] = r.attempts.get(f"{key}:faults", 0) + 1

    settings = runtime.settings()
    runtime.store().apply(job_id, expect, mutate=count, check_in=settings.retry_max_delay + settings.watchdog_grace,
                          run=run)


def spent(record: JobRecord, key: str, settings: Settings, step: str, what: str) -> Spent | None:
    """Why step `key` (`step`: "download", "finalize") may not run again, or None."""
    runs = record.attempts.get(key, 0)
    faults = record.attempts.get(f"{key}:faults", 0)
    if runs - faults > settings.max_deliveries:
        return Spent(f"{step}_poison", f"{what}: started {runs - faults} times without finishing "
                                       f"(SONGQUEUE_MAX_DELIVERIES={settings.max_deliveries})")
    if runs > settings.max_deliveries + settings.max_transient_errors:
        return Spent(f"{step}_exhausted", f"{what}: {runs} runs ({faults} transient faults) without finishing")
    return None
