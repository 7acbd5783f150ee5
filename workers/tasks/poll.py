"""Step 2: ask the upstream how the task is doing, then look again later by countdown.

No worker slot waits on the upstream: each run is one fetch, and the next one is a
`retry(countdown=...)` of the same task. Finished songs are dispatched for download as
soon as they are seen, even while their sibling is still generating.

`once=True` is a one-shot poll, sent by the notify hook (producer/ops/hook_server.py) when the
gateway says the task changed: it fetches and merges under the same fencing token like any
poll, but never schedules another one, so the countdown chain stays the only chain.
"""

from __future__ import annotations

import time

from celery import Task

from producer import task_names
from producer.client.callbacks import PROGRESS, announce, wants
from producer.models.job_record import WAITING_STATES, JobRecord, JobState
from workers import fault_points, metrics, runtime
from workers.admission import gate
from workers.celery_app import app
from workers.providers.base import Outcome
from workers.retry_policy import look_again, next_poll_delay, retry_or_give_up
from workers.tasks.common import end_job, log, send, wait_for_limit
from workers.tasks.status_merge import merge_status
from workers.upstream.errors import PermanentError, TransientError


@app.task(name=task_names.POLL, bind=True, max_retries=None)
def poll(self: Task, job_id: str, token: int = 0, once: bool = False, faults: int = 0) -> None:
    """`faults`: transient faults in a row so far, counted by workers.retry_policy."""
    store = runtime.store()
    settings = runtime.settings()
    record = store.get(job_id)
    if record is None or record.state not in WAITING_STATES or record.upstream_task_id is None:
        return
    if record.token != token:
        return  # the watchdog has handed polling to a newer message
    if record.deadline_at is not None and time.time() > record.deadline_at:
        _polling_ended(end_job(
            job_id, JobState.TIMED_OUT, "upstream_deadline",
            f"no terminal answer from {record.provider} within its deadline "
            f"({record.deadline_at - (record.submitted_at or record.created_at):.0f}s)",
            expect=WAITING_STATES,
        ))
        return
    admitted = gate.admit_poll(store.redis, settings, record.provider)
    if isinstance(admitted, gate.Wait):
        if not once:  # a one-shot poll just yields: the chain's next poll is scheduled
            wait_for_limit(self, record, token, admitted, expect=WAITING_STATES)
        return
    try:
        with metrics.upstream_call(record.provider, "fetch"):
            fault_points.hit("poll.before_fetch")
            status = runtime.polled_provider(record.provider).fetch(record.upstream_task_id)
            fault_points.hit("poll.after_fetch")
    except TransientError as exc:
        if once:
            log.info("job %s: one-shot poll hit a transient fault; the poll chain carries on: %s", job_id, exc.message)
            return
        # The fetch is counted; the watchdog's deadline covers the longest backoff.
        if store.apply(job_id, WAITING_STATES, mutate=_count_fault, token=token,
                       check_in=settings.retry_max_delay + settings.watchdog_grace) is None:
            return
        code = exc.code

        def give_up(message: str) -> None:
            _polling_ended(end_job(job_id, JobState.FAILED, code, message, expect=WAITING_STATES))

        retry_or_give_up(self, settings, "poll", exc.message, retry_after=exc.retry_after, give_up=give_up)
        return
    except PermanentError as exc:
        _polling_ended(end_job(job_id, JobState.FAILED, exc.code, exc.message, expect=WAITING_STATES), uncounted=1)
        return

    if status.outcome is Outcome.FAILED:
        reason = status.fail_reason or f"status {status.raw_status}"
        _polling_ended(end_job(job_id, JobState.FAILED, "upstream_failure", f"the upstream reported FAILURE: {reason}",
                               expect=WAITING_STATES), uncounted=1)
        return

    elapsed = time.time() - (record.submitted_at or record.created_at)
    _, least, most = settings.poll_schedule(record.provider)
    countdown = next_poll_delay(elapsed, status.progress, least, most)
    done = status.outcome is Outcome.SUCCEEDED
    progress_before = record.progress
    record = store.apply(
        job_id, WAITING_STATES, mutate=lambda r: merge_status(r, status),
        to=JobState.DOWNLOADING if done else JobState.GENERATING, token=token,
        # Once downloading, the download steps keep the watchdog's deadline fresh; a
        # one-shot poll leaves the deadline of the chain's next poll as it is.
        check_in=settings.watchdog_grace if done else (None if once else countdown + settings.watchdog_grace),
    )
    if record is None:
        return
    if record.progress != progress_before and wants(record, PROGRESS, settings.callback_progress):
        announce(app, record, PROGRESS)
    if status.outcome is Outcome.SUCCEEDED and not record.songs:
        end_job(job_id, JobState.FAILED, "upstream_no_songs", "the upstream reported SUCCESS without any songs",
                expect={JobState.DOWNLOADING})
        return
    _dispatch_finished(job_id, record)
    if status.outcome is Outcome.SUCCEEDED:
        _polling_ended(record)
        log.info("job %s: upstream task %s done after %d poll(s)", job_id, record.upstream_task_id,
                 record.attempts.get("poll", 0), extra={"job_id": job_id, "upstream_task_id": record.upstream_task_id})
        if record.stored_assets() == record.expected_assets():
            send(task_names.FINALIZE, job_id, record=record)
        return
    if once:
        return  # the chain's next poll is already scheduled
    raise look_again(self, countdown)


def _polling_ended(record: JobRecord | None, uncounted: int = 0) -> None:
    """Count the job's fetches once its polling is over (`uncounted`: the last one, when it
    was not merged into the record)."""
    if record is not None:
        metrics.polls_per_job(record.provider, record.attempts.get("poll", 0) + uncounted)


def _count_fault(record: JobRecord) -> None:
    record.attempts["poll"] = record.attempts.get("poll", 0) + 1
    record.waiting_for = None


def _dispatch_finished(job_id: str, record: JobRecord) -> None:
    """Send downloads for finished songs not yet sent, then mark them sent.

    Sent before marked: a crash in between sends them again, which the download step
    absorbs (it skips an asset already stored).
    """
    ready = [i for i, s in enumerate(record.songs) if s.finished and not s.dispatched]
    if not ready:
        return
    for index in ready:
        for asset in record.songs[index].assets():
            send(task_names.DOWNLOAD, job_id, index, asset, record=record)

    def mark(r: JobRecord) -> None:
        for index in ready:
            r.songs[index].dispatched = True

    runtime.store().apply(job_id, {JobState.GENERATING, JobState.DOWNLOADING}, mutate=mark)
