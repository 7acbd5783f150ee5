"""What every step does alike: send the next step, hold a job back by a limit, end a job with an error."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection

from celery import Task

from producer.core import task_names
from producer.core.callbacks import TERMINAL_EVENTS, announce, wants
from producer.core.models.job_record import LIVE_STATES, JobError, JobRecord, JobState
from producer.core.objects.archive import send_archive
from workers import fault_points, metrics, runtime
from workers.admission.limits import Wait
from workers.celery_app import app
from workers.steps import ledger
from workers.task_base import note_job_failed

log = logging.getLogger("songqueue.tasks")

def send(task_name: str, job_id: str, *args: object, countdown: float | None = None,
         record: JobRecord | None = None) -> None:
    """Send a step; with the job's `record`, Flower shows its provider and prompt too."""
    label = task_names.argsrepr(job_id, *args, provider=record.provider if record else "",
                                request=record.request if record else None)
    fault_points.hit("send.before")
    app.send_task(task_name, args=[job_id, *args], countdown=countdown, argsrepr=label)
    fault_points.hit("send.after")


def wait_for_limit(task: Task, record: JobRecord, token: int, wait: Wait, expect: Collection[JobState]) -> None:
    """Hold a job back by a shared limit or the budget: retry after `wait.seconds` by
    countdown (no worker slot waits), the reason on the record for `songqueue status`.

    The reason is written once per stretch of waiting (it stays the same while the cause
    does); later rounds only push back the watchdog's deadline. Returns without a retry
    when the job moved on meanwhile."""
    store = runtime.store()
    check_in = wait.seconds + runtime.settings().watchdog_grace
    metrics.limit_wait(record.provider, wait.limit)
    if record.waiting_for != wait.reason:
        if store.apply(record.id, expect, mutate=lambda r: setattr(r, "waiting_for", wait.reason),
                       token=token, check_in=check_in) is None:
            return
        log.info("job %s: waits: %s", record.id, wait.reason, extra={"job_id": record.id})
    else:
        store.check_in(record.id, check_in)
    raise task.retry(countdown=wait.seconds)


def park(record: JobRecord, token: int, wait: Wait, expect: Collection[JobState]) -> None:
    """Park a job the in-flight limit `wait.limit` holds back: admission already put it in the
    limit's park queue (producer/core/store/parking.py); here its record says why, and its
    watchdog check moves SONGQUEUE_PARKED_CHECK ahead (capped at the caller's deadline by the
    store). No retry: a place freeing wakes it, and its submit returns now."""
    settings = runtime.settings()
    metrics.limit_wait(record.provider, wait.limit)

    def note(r: JobRecord) -> None:
        r.waiting_for = wait.reason
        r.parked = wait.limit

    if record.parked == wait.limit and record.waiting_for == wait.reason:
        # Woken and parked again (its place was taken meanwhile): the record says so already.
        # Only the watchdog's check moves, so a wake racing this write is not refused.
        runtime.store().check_in(record.id, _capped(record, settings.parked_check))
        return
    if runtime.store().apply(record.id, expect, mutate=note, token=token, check_in=settings.parked_check) is not None:
        log.info("job %s: parked: %s", record.id, wait.reason, extra={"job_id": record.id})


def _capped(record: JobRecord, seconds: float) -> float:
    """`seconds`, or less when the caller's deadline comes first (the watchdog ends it then)."""
    if record.cancel_after is None:
        return seconds
    return max(0.0, min(seconds, record.cancel_after - time.time()))


def end_job(
    job_id: str, state: JobState, code: str, message: str, expect: Collection[JobState] = LIVE_STATES,
    *, token: int | None = None, run: int | None = None, call_price: float = 0.0,
) -> JobRecord | None:
    """End the job with an error; `token` and `run` fence it like any write (JobStore.apply);
    `call_price`: the paid call of the record's submit intent is charged in the same write
    that ends it, unless it is charged already (workers/steps/ledger.py)."""
    def note(record: JobRecord) -> None:
        record.error = JobError(code=code, message=message)
        record.waiting_for = None
        record.parked = None
        ledger.charge_current(record, call_price)

    record = finish(lambda debt: runtime.store().apply(job_id, expect, mutate=note, to=state,
                                                       token=token, run=run, debt=debt))
    if record is not None:
        log.warning("job %s: %s (%s): %s", job_id, state.value, code, message,
                    extra={"job_id": job_id, "upstream_task_id": record.upstream_task_id})
        send_archive(app, record)
        if state in (JobState.FAILED, JobState.TIMED_OUT):
            note_job_failed(f"job {job_id}: {state.value} ({code}): {message}")
    return record


def callback_debt(record: JobRecord) -> float | None:
    """What the ended `record` owes in the callback outbox: seconds until the watchdog round
    sends its end's callback again unless it is settled first, or None without one."""
    if wants(record, TERMINAL_EVENTS[record.state]):
        return runtime.settings().watchdog_grace
    return None


def finish(end: Callable[[Callable[[JobRecord], float | None]], JobRecord | None]) -> JobRecord | None:
    """Run `end` (the terminal write, given `callback_debt` for JobStore.apply's `debt`),
    then announce the end.

    The debt is written in the terminal write itself, atomically with the end: a worker
    that dies between that write and sending the callback leaves it in the outbox, and the
    watchdog round sends it. A refused write owes nothing; an end without a callback
    writes no debt at all (no outbox round trips).
    """
    record = end(callback_debt)
    if record is not None and wants(record, TERMINAL_EVENTS[record.state]):
        announce(app, record, TERMINAL_EVENTS[record.state])
    return record
