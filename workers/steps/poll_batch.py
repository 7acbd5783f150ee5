"""Batch polling: one fetch call for every due job of a provider that can fetch many.

The poll task of job J (workers/tasks/poll.py) claims J and every other job of its
provider due within the batch window (`poll_due.claim`), fetches them all in one
`fetch_many` call, applies each other job's answer under that job's own fencing token
(`poll_apply.apply_status`, as if it had been polled alone), gives each its next due time,
and hands J's own answer back to the poll task. A job whose answer another job's batch
applied finds, when its own poll task runs, that it is not due yet, and only looks again
when it is: the countdown chain stays one per job, so the watchdog covers it as before.
A task the upstream leaves out of an answer is not failed at once: its absences are
counted and only more than SONGQUEUE_{NAME}_MAX_ABSENCES fail the job.
"""

from __future__ import annotations

import time

from producer.models.job_record import WAITING_STATES, JobRecord, JobState
from producer.settings import Settings
from producer.store import keys, poll_due
from workers import runtime
from workers.providers.base import AsyncProvider, BatchProvider, UpstreamStatus
from workers.steps.common import end_job, log
from workers.steps.poll_apply import apply_status, past_deadline, polling_ended
from workers.upstream.errors import PermanentError

NOT_DUE_FLOOR = 0.05  # seconds: a job due a hair from now still waits for its own turn


def batch_size(settings: Settings, provider: AsyncProvider) -> int:
    """How many tasks one fetch may carry for `provider`: 1 unless it can fetch many."""
    if not isinstance(provider, BatchProvider):
        return 1
    return int(getattr(settings, f"{provider.name}_poll_batch_size", 1))


def _key(provider: str) -> str:
    return keys.poll_due(runtime.store().prefix, provider)


def claim(record: JobRecord, size: int) -> tuple[list[str], float | None]:
    """([job, others...], None), or ([], seconds until the job is due) when another job's
    batch has already fetched it."""
    settings = runtime.settings()
    _, least, _ = settings.poll_schedule(record.provider)
    window = float(getattr(settings, f"{record.provider}_poll_batch_window", least))
    now = time.time()
    claimed, due_at = poll_due.claim(runtime.store().redis, _key(record.provider), record.id, now,
                                     window=window, size=size, lease=settings.http_timeout + least)
    if due_at is not None:
        return [], max(NOT_DUE_FLOOR, due_at - now)
    return claimed, None


def release(provider: str, job_ids: list[str]) -> None:
    """Make claimed jobs due again now (the batch was not sent)."""
    now = time.time()
    for job_id in job_ids:
        poll_due.schedule(runtime.store().redis, _key(provider), job_id, now)


def reschedule(record: JobRecord, countdown: float | None) -> None:
    """The job's next due time, or out of the due set once its polling is over."""
    redis, key = runtime.store().redis, _key(record.provider)
    if countdown is None:
        poll_due.drop(redis, key, record.id)
    else:
        poll_due.schedule(redis, key, record.id, time.time() + countdown)


def fetch(provider: BatchProvider, record: JobRecord, claimed: list[str]) -> UpstreamStatus | None:
    """Fetch `record`'s task with every other claimed job's in one call; apply the others'
    answers; return `record`'s own (None when the upstream left it out)."""
    store = runtime.store()
    others: list[JobRecord] = []
    for job_id in claimed[1:]:
        other = store.get(job_id)
        if other is None or other.state not in WAITING_STATES or other.upstream_task_id is None:
            poll_due.drop(store.redis, _key(record.provider), job_id)  # its polling is over
        else:
            others.append(other)
    assert record.upstream_task_id is not None
    try:
        answers = provider.fetch_many([record.upstream_task_id, *(o.upstream_task_id or "" for o in others)])
    except PermanentError as exc:
        # A relay that refuses the batch call says nothing about this job's task: ask for it alone.
        log.warning("job %s: batch fetch refused (%s); fetching its task alone", record.id, exc.message)
        release(record.provider, [o.id for o in others])
        return provider.fetch(record.upstream_task_id)
    for other in others:
        try:
            _apply_other(other, answers.get(other.upstream_task_id or ""))
        except Exception:  # noqa: BLE001 - one job's trouble must not cost the others their answers
            log.exception("job %s: applying its batch answer failed; it is due again", other.id)
            release(other.provider, [other.id])
    return answers.get(record.upstream_task_id)


def _apply_other(record: JobRecord, status: UpstreamStatus | None) -> None:
    if past_deadline(record):
        reschedule(record, None)
        return
    countdown = absent(record, record.token) if status is None else apply_status(record, record.token, status)
    reschedule(record, countdown)


def absent(record: JobRecord, token: int) -> float | None:
    """Count one answer that left the job's task out; fail the job past the bound. The
    countdown to its next poll, or None when its polling is over."""
    settings = runtime.settings()
    count = record.attempts.get("absent", 0) + 1
    bound = int(getattr(settings, f"{record.provider}_max_absences", 1))
    if count > bound:
        polling_ended(end_job(record.id, JobState.FAILED, "upstream_task_missing",
                              f"the upstream left task {record.upstream_task_id} out of {count} batch answers",
                              expect=WAITING_STATES))
        return None
    _, least, _ = settings.poll_schedule(record.provider)

    def note(r: JobRecord) -> None:
        r.attempts["absent"] = count
        r.attempts["poll"] = r.attempts.get("poll", 0) + 1

    if runtime.store().apply(record.id, WAITING_STATES, mutate=note, token=token,
                             check_in=least + settings.watchdog_grace) is None:
        return None
    log.info("job %s: task %s left out of a batch answer (%d of %d allowed)", record.id,
             record.upstream_task_id, count, bound)
    return least
