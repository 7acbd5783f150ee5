"""The watchdog: reschedules any job whose next step is overdue.

Every worker runs a round every SONGQUEUE_WATCHDOG_INTERVAL on a timer thread
(workers/watchdog_timer.py); a Redis lease keeps it to one round per interval across the
fleet. It is no Celery task: nothing sends or schedules one.

A worker killed by SIGKILL leaves its unacked messages, countdowns included, invisible
until the broker's visibility timeout (hours). The job store knows better: every step
sets a deadline (`check_in`) in the `due` index, and a job past it gets its step sent
again under a new fencing token, so the original message is a no-op if it ever returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from producer.core import deadlines, task_names
from producer.core.broker import queue_depths
from producer.core.callbacks import TERMINAL_EVENTS, announce, wants
from producer.core.models.job_record import JobRecord, JobState
from producer.core.store import keys, parking
from producer.core.store.api_keys import KeyStore
from producer.core.store.optimistic import Writes
from workers import metrics, runtime
from workers.admission import budget
from workers.celery_app import app
from workers.providers import registry
from workers.steps import uncertain
from workers.steps.common import end_job, log, send

# A job overdue while its step's queue is backed up is most often waiting in that queue
# (thousands submitted at once), not lost. Resending every overdue job each round made a
# queue that a busy fleet drained slowly grow faster than it drained, and each resend's
# new token sent the job's only valid message to the back again: a 10,000-job burst never
# finished. So while the step's queue holds at least DEFER_BACKLOG messages, an overdue
# job is only looked at again later (grace, then twice as long each time, up to
# BACKOFF_CAP x grace), and resent once it was deferred MAX_DEFERRALS times in that state
# (about half an hour with the default grace): a lost message still heals, if later.
DEFER_BACKLOG = 100
MAX_DEFERRALS = 6
BACKOFF_CAP = 32
STEP_QUEUES = {JobState.QUEUED: "submit", JobState.SUBMITTED: "poll", JobState.GENERATING: "poll",
               JobState.DOWNLOADING: "download"}


def watchdog_round() -> int:
    """One round, unless another worker ran one this interval; returns how many jobs were rescheduled."""
    store = runtime.store()
    settings = runtime.settings()
    if not store.try_watchdog_round(settings.watchdog_interval * 0.9):
        return 0
    store.note_watchdog_round(time.time())
    rescheduled = deferred = 0
    depths: dict[str, int] | None = None  # asked of the broker once a round, if needed
    for job_id in store.overdue(time.time()):
        record, due = store.get_with_due(job_id)
        if record is None or record.state.terminal:
            store.forget_due(job_id)  # nothing left to heal (the record expired or was deleted)
            continue
        if due is None or due > time.time():
            # Moved on since the list was read: a step wrote it (and its new deadline) in
            # between. Acting on it would take a submit in the middle of its paid call for
            # one that died (found by the 100,000-job run: workers back after an outage
            # longer than the grace, the first round and the first submits racing).
            continue
        queue = STEP_QUEUES.get(record.state)
        # A parked job has no message in any queue: its look sends nothing unless its wake was lost.
        if queue is not None and condition(record) is not Condition.PARKED and looked_at(record) < MAX_DEFERRALS:
            if depths is None:
                depths = queue_depths(app)
            if depths.get(queue, 0) >= DEFER_BACKLOG:
                _defer(record)
                deferred += 1
                continue
        done = _reschedule(record)
        if done:
            metrics.watchdog_rescheduled(record.state.value)
        rescheduled += done
    if rescheduled:
        log.warning("watchdog: rescheduled %d overdue jobs", rescheduled)
    if deferred:
        log.info("watchdog: %d overdue jobs wait behind a backlog of their step's queue; looked at later", deferred)
    _send_owed_callbacks()
    _send_parked_callbacks()
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
        if record is None or (record.state.terminal and not wants(record, TERMINAL_EVENTS[record.state])):
            store.callback_settled(job_id)
        elif not record.state.terminal:
            store.owe_callback(job_id, settings.watchdog_grace)  # its end is still to come
        else:
            log.warning("watchdog: job %s: sending its %s callback again", job_id, record.state.value)
            store.owe_callback(job_id, settings.retry_max_delay + settings.watchdog_grace)
            announce(app, record, TERMINAL_EVENTS[record.state])


def _send_parked_callbacks() -> None:
    """Send every callback delivery parked until now (workers/tasks/callback.py: a wait of the
    schedule longer than a broker countdown may last)."""
    for d in runtime.store().claim_due_callbacks(time.time()):
        app.send_task(task_names.CALLBACK, args=[d["job_id"], d["event"], d["delivery"], d["sent_at"]],
                      kwargs={"faults": d["faults"]},
                      argsrepr=f"job={d['job_id']} event={d['event']} delivery={d['delivery']}")


def looked_at(record: JobRecord) -> int:
    """How often the watchdog deferred or rescheduled the job in its present state."""
    return record.attempts.get(f"watchdog:{record.state.value}", 0)


def backoff(record: JobRecord, grace: float) -> float:
    """Seconds until the watchdog looks at the job again: twice as long each time in one state."""
    return grace * min(2 ** looked_at(record), BACKOFF_CAP)


def _count(r: JobRecord) -> None:
    key = f"watchdog:{r.state.value}"
    r.attempts[key] = r.attempts.get(key, 0) + 1


def _defer(record: JobRecord) -> None:
    grace = backoff(record, runtime.settings().watchdog_grace)
    runtime.store().apply(record.id, {record.state}, mutate=_count, version=record.version, check_in=grace)


def _bump(r: JobRecord) -> None:
    r.token += 1
    _count(r)


def _grace(record: JobRecord) -> float:
    return backoff(record, runtime.settings().watchdog_grace)


def _resolve_uncertain(record: JobRecord) -> int:
    """SUBMITTING without a task id: the submit died mid-call; the paid request may have gone through."""
    if not uncertain.resolve(record):
        return 1
    fresh = runtime.store().apply(record.id, {JobState.SUBMITTING}, mutate=_bump, version=record.version,
                                  check_in=_grace(record))
    if fresh is not None:
        send(task_names.SUBMIT, record.id, fresh.token, record=fresh)
    return 1


def _adopt_task(record: JobRecord) -> int:
    """SUBMITTING with a task id: a paid task id is on the record (an older run's, kept by
    paid._keep_paid_task onto a newer run's intent) though no run moved the job on. The
    submit step leaves such a record alone (it never submits over a task id), so the
    watchdog takes the task as the job's: SUBMITTED under a new token (a run of the newer
    intent still in flight is fenced off, and its own id kept as paid), then polled."""
    settings = runtime.settings()
    now = time.time()

    def adopt(r: JobRecord) -> None:
        _bump(r)
        r.submitted_at = r.submitted_at or now
        r.deadline_at = r.deadline_at or deadlines.first(now + registry.deadline_seconds(settings, r.provider),
                                                         r.cancel_after)
        r.waiting_for = None

    fresh = runtime.store().apply(record.id, {JobState.SUBMITTING}, mutate=adopt, to=JobState.SUBMITTED,
                                  version=record.version, check_in=_grace(record))
    if fresh is not None:
        log.warning("watchdog: job %s SUBMITTING with task %s and no run moving it on; polling that task", record.id,
                    record.upstream_task_id, extra={"job_id": record.id, "upstream_task_id": record.upstream_task_id})
        send(task_names.POLL, record.id, fresh.token, record=fresh)
    return 1


def _resubmit_queued(record: JobRecord) -> int:
    """QUEUED: a submit that died between its admission and its intent left the job in the
    provider's in-flight set: a QUEUED job holds no place, so it goes with the bump (which
    also fences that submit's intent). Its budget reservation, now unusable, is given back
    by the round (workers/admission/budget.py)."""
    store = runtime.store()
    in_flight = [keys.in_flight(store.prefix, record.provider)]
    if record.api_key:
        in_flight.append(keys.key_in_flight(store.prefix, record.api_key))

    def release(writes: Writes) -> None:
        for held in in_flight:
            writes.zrem(held, record.id)

    def bump(r: JobRecord) -> None:
        _bump(r)
        r.parked = None  # sent: no longer parked (its submit parks it again if it must)

    fresh = store.apply(record.id, {JobState.QUEUED}, mutate=bump, version=record.version, check_in=_grace(record),
                        also=release)
    if fresh is not None:
        send(task_names.SUBMIT, record.id, fresh.token, record=fresh)
    return 1


def _check_parked(record: JobRecord) -> int:
    """QUEUED and parked behind an in-flight limit (producer/core/store/parking.py): it waits
    for a wake, and costs nothing while its limit is full. Sent again only when the wake was
    lost: it left its park queue without a submit (a crash between the pop and the send), or
    its set has room nobody woke it for (a crash between the freeing write and the wake).
    Otherwise only its next look moves (SONGQUEUE_PARKED_CHECK ahead, capped at its deadline)."""
    store = runtime.store()
    settings = runtime.settings()
    sets = parking.limit_sets(store.prefix, record)
    held = sets.get(record.parked or "")
    limit = _in_flight_limit(record)
    if (held is None or limit is None or store.redis.zscore(keys.parked(held), record.id) is None
            or store.redis.zcard(held) < limit):
        log.warning("watchdog: job %s parked with no wake coming; sending its submit", record.id,
                    extra={"job_id": record.id})
        return _resubmit_queued(record)
    store.apply(record.id, {JobState.QUEUED}, version=record.version, check_in=settings.parked_check)
    return 0


def _in_flight_limit(record: JobRecord) -> int | None:
    """The limit the job is parked behind, as configured now (None: lifted, or the key is gone)."""
    settings = runtime.settings()
    if record.parked == parking.PROVIDER_LIMIT:
        return settings.provider(record.provider).max_in_flight
    if record.parked == parking.KEY_LIMIT and record.api_key:
        key = KeyStore(runtime.store().redis, settings.key_prefix).get(record.api_key)
        return key.max_in_flight if key is not None else None
    return None


def _poll_again(record: JobRecord) -> int:
    fresh = runtime.store().apply(record.id, {record.state}, mutate=_bump, version=record.version,
                                  check_in=_grace(record))
    if fresh is not None:
        log.info("watchdog: job %s overdue in %s; polling again", record.id, record.state.value)
        send(task_names.POLL, record.id, fresh.token, record=fresh)
    return 1


def _end_without_task(record: JobRecord) -> int:
    """Waiting on an upstream task with no task id: nothing can be polled (the poll step
    returns without acting), so the job would wait forever; it ends saying so."""
    ended = end_job(record.id, JobState.FAILED, "job_inconsistent",
                    f"the job was {record.state.value} without an upstream task id: there is nothing to poll",
                    expect={record.state})
    return int(ended is not None)


def _resend_downloads(record: JobRecord) -> int:
    fresh = runtime.store().apply(record.id, {JobState.DOWNLOADING}, mutate=_count, version=record.version,
                                  check_in=_grace(record))
    if fresh is None:
        return 0
    missing = [i for i, song in enumerate(fresh.songs) if any(getattr(song, a) is None for a in song.assets())]
    for index in missing:
        # One message per song: it fetches only the song's assets not yet stored.
        send(task_names.DOWNLOAD, record.id, index, None, fresh.run, record=fresh)
    if not missing:
        send(task_names.FINALIZE, record.id, fresh.run, record=fresh)
    log.info("watchdog: job %s overdue in DOWNLOADING; resent the downloads of %d songs", record.id, len(missing))
    return 1


def _cancel_before_submit(record: JobRecord) -> int:
    """QUEUED past the caller's deadline: nothing was called upstream, so it ends CANCELLED
    uncharged, even while its submit message waits behind a limit or a backlog."""
    ended = end_job(record.id, JobState.CANCELLED, *deadlines.before_submit(record), expect={JobState.QUEUED})
    return int(ended is not None)


def _settle_submitting(record: JobRecord) -> int:
    """SUBMITTING past the deadline: the call may have been paid, so the deadline cannot
    cancel it; it is settled as without a deadline, and its polling then ends it TIMED_OUT."""
    return (_adopt_task if record.upstream_task_id is not None else _resolve_uncertain)(record)


def _time_out_submitted(record: JobRecord) -> int:
    """Waiting on the upstream past the caller's deadline (its poll chain lost): TIMED_OUT, charge kept."""
    ended = end_job(record.id, JobState.TIMED_OUT, *deadlines.after_submit(record), expect={record.state})
    return int(ended is not None)


def _forget(record: JobRecord) -> int:
    runtime.store().forget_due(record.id)  # ended: nothing left to heal
    return 0


class Condition(StrEnum):
    """What the watchdog can find on an overdue record besides its state."""

    NO_TASK_ID = "no task id"
    TASK_ID = "task id"
    PAST_DEADLINE = "past the caller's deadline"
    PARKED = "parked behind an in-flight limit"


def condition(record: JobRecord, now: float | None = None) -> Condition:
    if record.cancel_after is not None and (time.time() if now is None else now) >= record.cancel_after:
        return Condition.PAST_DEADLINE
    if record.state is JobState.QUEUED and record.parked is not None:
        return Condition.PARKED
    return Condition.TASK_ID if record.upstream_task_id is not None else Condition.NO_TASK_ID


def _as_unparked(record: JobRecord) -> int:
    return ACTIONS[(record.state, Condition.TASK_ID if record.upstream_task_id else Condition.NO_TASK_ID)](record)


Action = Callable[[JobRecord], int]
# Every (state, condition) the watchdog can find, and what it does: a pair without a row
# was a job the watchdog saw overdue every round and never moved (SUBMITTING with a task
# id). tests/unit/workers/test_watchdog_table.py checks every pair has a row.
ACTIONS: dict[tuple[JobState, Condition], Action] = {
    (JobState.QUEUED, Condition.NO_TASK_ID): _resubmit_queued,
    # A replayed job (`songqueue retry`) keeps its last task id until its new submit answers.
    (JobState.QUEUED, Condition.TASK_ID): _resubmit_queued,
    (JobState.SUBMITTING, Condition.NO_TASK_ID): _resolve_uncertain,
    (JobState.SUBMITTING, Condition.TASK_ID): _adopt_task,
    (JobState.SUBMITTED, Condition.TASK_ID): _poll_again,
    (JobState.SUBMITTED, Condition.NO_TASK_ID): _end_without_task,
    (JobState.GENERATING, Condition.TASK_ID): _poll_again,
    (JobState.GENERATING, Condition.NO_TASK_ID): _end_without_task,
    # A synchronous provider's songs came with the submit: no task id.
    (JobState.DOWNLOADING, Condition.TASK_ID): _resend_downloads,
    (JobState.DOWNLOADING, Condition.NO_TASK_ID): _resend_downloads,
    # The caller's deadline (producer/core/deadlines.py): what it costs to stop decides.
    (JobState.QUEUED, Condition.PAST_DEADLINE): _cancel_before_submit,
    (JobState.SUBMITTING, Condition.PAST_DEADLINE): _settle_submitting,
    (JobState.SUBMITTED, Condition.PAST_DEADLINE): _time_out_submitted,
    (JobState.GENERATING, Condition.PAST_DEADLINE): _time_out_submitted,
    # Made and paid for: the songs are stored whatever the deadline.
    (JobState.DOWNLOADING, Condition.PAST_DEADLINE): _resend_downloads,
    # Waiting for a wake (producer/core/store/parking.py): sent again only if it was lost.
    (JobState.QUEUED, Condition.PARKED): _check_parked,
    # Only a QUEUED job is found parked (`condition`); a stale mark on another state is ignored.
    **{(state, Condition.PARKED): _as_unparked for state in JobState if not state.terminal
       and state is not JobState.QUEUED},
    **{(state, c): _forget for state in JobState if state.terminal for c in Condition},
}


def _reschedule(record: JobRecord) -> int:
    return ACTIONS[(record.state, condition(record))](record)
