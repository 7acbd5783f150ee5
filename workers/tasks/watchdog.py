"""The watchdog: reschedules any job whose next step is overdue.

Every worker runs a round every SONGQUEUE_WATCHDOG_INTERVAL on a timer thread
(workers/watchdog_timer.py); a Redis lease keeps it to one round per interval across the
fleet. The task `songqueue.watchdog` runs one round on demand.

A worker killed by SIGKILL leaves its unacked messages, countdowns included, invisible
until the broker's visibility timeout (hours). The job store knows better: every step
sets a deadline (`check_in`) in the `due` index, and a job past it gets its step sent
again under a new fencing token, so the original message is a no-op if it ever returns.
"""

from __future__ import annotations

import time

from producer import task_names
from producer.client.callbacks import TERMINAL_EVENTS, announce
from producer.models.job_record import JobRecord, JobState
from producer.store import keys
from producer.store.optimistic import Writes
from workers import metrics, runtime
from workers.admission import budget
from workers.celery_app import app
from workers.steps.common import log, send
from workers.tasks.submit import resolve_uncertain


@app.task(name=task_names.WATCHDOG)
def watchdog() -> int:
    """One round on demand; returns how many jobs were rescheduled."""
    return watchdog_round()


def watchdog_round() -> int:
    """One round, unless another worker ran one this interval; returns how many jobs were rescheduled."""
    store = runtime.store()
    settings = runtime.settings()
    if not store.try_watchdog_round(settings.watchdog_interval * 0.9):
        return 0
    store.note_watchdog_round(time.time())
    rescheduled = 0
    for job_id in store.overdue(time.time()):
        record = store.get(job_id)
        if record is None or record.state.terminal:
            store.forget_due(job_id)  # nothing left to heal (the record expired or was deleted)
            continue
        done = _reschedule(record)
        if done:
            metrics.watchdog_rescheduled(record.state.value)
        rescheduled += done
    if rescheduled:
        log.warning("watchdog: rescheduled %d overdue jobs", rescheduled)
    _send_owed_callbacks()
    budget.return_stranded(store.redis, store)
    return rescheduled


def _send_owed_callbacks() -> None:
    """Send again every end whose callback is owed past its time (its worker died between
    the terminal write and the send, or the send failed); same delivery id, so receivers
    drop a repeat."""
    store = runtime.store()
    settings = runtime.settings()
    for job_id in store.owed_callbacks(time.time()):
        record = store.get(job_id)
        if record is None or (record.state.terminal and not record.callback_url):
            store.callback_settled(job_id)
        elif not record.state.terminal:
            store.owe_callback(job_id, settings.watchdog_grace)  # its end is still to come
        else:
            log.warning("watchdog: job %s: sending its %s callback again", job_id, record.state.value)
            store.owe_callback(job_id, settings.retry_max_delay + settings.watchdog_grace)
            announce(app, record, TERMINAL_EVENTS[record.state])


def _reschedule(record: JobRecord) -> int:
    store = runtime.store()
    settings = runtime.settings()
    grace = settings.watchdog_grace

    def bump(r: JobRecord) -> None:
        r.token += 1

    if record.state == JobState.SUBMITTING and record.upstream_task_id is None:
        # The submit died mid-call: the paid request may have gone through.
        if not resolve_uncertain(record):
            return 1
        fresh = store.apply(record.id, {JobState.SUBMITTING}, mutate=bump, version=record.version, check_in=grace)
        if fresh is not None:
            send(task_names.SUBMIT, record.id, fresh.token, record=fresh)
        return 1
    if record.state == JobState.QUEUED:
        # A submit that died between its admission and its intent left the job in the
        # provider's in-flight set: a QUEUED job holds no place, so it goes with the bump
        # (which also fences that submit's intent). Its budget reservation, now unusable,
        # is given back below (workers/admission/budget.py).
        in_flight = [keys.in_flight(store.prefix, record.provider)]
        if record.api_key:
            in_flight.append(keys.key_in_flight(store.prefix, record.api_key))

        def release(writes: Writes) -> None:
            for held in in_flight:
                writes.zrem(held, record.id)

        fresh = store.apply(record.id, {JobState.QUEUED}, mutate=bump, version=record.version, check_in=grace,
                            also=release)
        if fresh is not None:
            send(task_names.SUBMIT, record.id, fresh.token, record=fresh)
        return 1
    if record.state in (JobState.SUBMITTED, JobState.GENERATING):
        fresh = store.apply(record.id, {record.state}, mutate=bump, version=record.version, check_in=grace)
        if fresh is not None:
            log.info("watchdog: job %s overdue in %s; polling again", record.id, record.state.value)
            send(task_names.POLL, record.id, fresh.token, record=fresh)
        return 1
    if record.state == JobState.DOWNLOADING:
        fresh = store.apply(record.id, {JobState.DOWNLOADING}, version=record.version, check_in=grace)
        if fresh is None:
            return 0
        missing = [(i, asset) for i, song in enumerate(fresh.songs) for asset in song.assets()
                   if getattr(song, asset) is None]
        for index, asset in missing:
            send(task_names.DOWNLOAD, record.id, index, asset, fresh.run, record=fresh)
        if not missing:
            send(task_names.FINALIZE, record.id, fresh.run, record=fresh)
        log.info("watchdog: job %s overdue in DOWNLOADING; resent %d downloads", record.id, len(missing))
        return 1
    return 0
