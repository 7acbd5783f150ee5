"""Batch polling: one fetch call for every due job of a provider that can fetch many.

A job's poll (workers/tasks/poll.py) does not fetch: it marks the job due in its provider's
due set (`poll_due.join`) and ends. One drainer per provider (workers/tasks/poll_drain.py,
started by the first job that joins while none runs) wakes every tick (the provider's
POLL_MIN_INTERVAL): when some job is due it claims, in one Lua call, every job due within
the batch window, up to the batch size, fetches them in one `fetch_many` call (one request
against the poll rate limit), and applies each answer under that job's own fencing token
(`poll_apply.apply_status`, as if it had been polled alone), giving each its next due time
from the same countdown schedule. A full batch is followed at once by the next.

Why the batches are full: the drain runs when the earliest job comes due, not whenever one
of the jobs' own poll messages happens to run, and takes everything due within the window
with it; nothing is due again before the window has passed (or a job's schedule says so),
so there is about one call per window, however many jobs are in flight.

A task the upstream leaves out of an answer is not failed at once: past a grace window after
its submit, its absences in a row are counted, and only more than SONGQUEUE_{NAME}_MAX_ABSENCES
fail the job (workers/steps/unknown_task.py); an answer that has it starts the count again. The watchdog covers each job
as before: every applied answer sets the job's next check-in, and a job whose drainer died
is sent a poll, which joins it again and starts a new drainer.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from producer.core import task_names
from producer.core.models.job_record import WAITING_STATES, JobRecord, JobState
from producer.core.provider_settings import BatchPolledProviderSettings
from producer.core.settings import Settings
from producer.core.store import keys, poll_due
from workers import fault_points, metrics, runtime
from workers.admission import gate
from workers.celery_app import app
from workers.providers.base import AsyncProvider, BatchProvider, Outcome, UpstreamStatus
from workers.retry_policy import backoff_delay, bound
from workers.steps import unknown_task
from workers.steps.common import end_job, log
from workers.steps.poll_apply import apply_status, past_deadline, polling_ended
from workers.upstream.errors import PermanentError, TaskUnknown, TransientError

# Batches one drainer run sends back to back while each comes back full; the rest waits a tick.
MAX_ROUNDS = 20
# How long a batch size learned from a refusal holds before the configured size is tried again.
LEARNED_CAP_SECONDS = 3600
# Threads that read and merge a batch's jobs: each merge is a few Redis round trips, and on a
# busy machine a round trip waits for a CPU twice, so a batch merged one job at a time would
# take far longer than its call.
MERGE_THREADS = 8
_pool: ThreadPoolExecutor | None = None


def _threads() -> ThreadPoolExecutor:
    global _pool  # noqa: PLW0603 - one pool per worker process, made after the pool child forks
    if _pool is None:
        _pool = ThreadPoolExecutor(MERGE_THREADS, thread_name_prefix="poll-batch")
    return _pool


@dataclass(frozen=True)
class Next:
    """When the drainer runs again, and the batch call's transient faults in a row so far."""

    countdown: float
    faults: int


def batch_size(settings: Settings, provider: AsyncProvider) -> int:
    """How many tasks one fetch may carry for `provider`: 1 unless it can fetch many; the
    configured size, or the smaller one its relay was seen to accept (`_learn_cap`)."""
    own = settings.provider(provider.name)
    if not isinstance(provider, BatchProvider) or not isinstance(own, BatchPolledProviderSettings):
        return 1
    learned = runtime.store().redis.get(keys.batch_cap(runtime.store().prefix, provider.name))
    return min(own.poll_batch_size, int(learned)) if learned else own.poll_batch_size


def _learn_cap(provider: str, refused: int) -> int:
    """A relay refused a batch of `refused` ids: try half as many, remembered for an hour by
    the whole fleet. Relays cap the ids of one fetch (50 is common) and say so only in a 400,
    so halving finds a cap in a few calls where falling back to one fetch per task would
    cost a call per job for as long as the jobs run. The memory expires: a refusal for
    another reason (a key refused) must not keep batches small for good."""
    size = max(1, refused // 2)
    store = runtime.store()
    store.redis.set(keys.batch_cap(store.prefix, provider), size, ex=LEARNED_CAP_SECONDS)
    return size


def _key(provider: str) -> str:
    return keys.poll_due(runtime.store().prefix, provider)


def _tick(settings: Settings, provider: str) -> float:
    _, least, _ = settings.poll_schedule(provider)
    return least


def _drainer_ttl(settings: Settings, provider: str) -> float:
    # Outlives one run (a few batch calls and their merges); a dead drainer's role lapses
    # after it, and the next job that joins starts another.
    return _tick(settings, provider) + 4 * settings.http_timeout


def join(record: JobRecord) -> None:
    """Mark the job due now; start the provider's drainer when none runs."""
    settings = runtime.settings()
    token = uuid.uuid4().hex
    if poll_due.join(runtime.store().redis, _key(record.provider), record.id, time.time(), token,
                     _drainer_ttl(settings, record.provider)):
        log.info("batch polling of %s: drainer %s started by job %s", record.provider, token[:8], record.id)
        # A tick from now, so the jobs whose polls come due with this one go in its first batch.
        app.send_task(task_names.POLL_DRAIN, args=[record.provider, token], countdown=_tick(settings, record.provider),
                      argsrepr=f"provider={record.provider} drainer={token[:8]}")


def drain(provider_name: str, token: str, faults: int) -> Next | None:
    """One drainer run: every batch due now, back to back while each is full. When to run
    again, or None when this drainer's role is over (no job left, or another took over)."""
    settings, store = runtime.settings(), runtime.store()
    key, tick = _key(provider_name), _tick(settings, provider_name)
    if poll_due.turn(store.redis, key, token, _drainer_ttl(settings, provider_name)) != poll_due.STILL_DRAINER:
        return None
    provider = runtime.polled_provider(provider_name)
    assert isinstance(provider, BatchProvider)
    size = batch_size(settings, provider)
    own = settings.provider(provider_name)
    window = own.poll_batch_window if isinstance(own, BatchPolledProviderSettings) else tick
    for _ in range(MAX_ROUNDS):
        claimed = poll_due.claim(store.redis, key, time.time(), window, size,
                                 lease=settings.http_timeout + tick)
        if not claimed:
            break
        records = _still_polled(key, claimed)
        if not records:
            continue
        admitted = gate.admit_poll(store.redis, settings, provider_name)
        if isinstance(admitted, gate.Wait):
            metrics.limit_wait(provider_name, admitted.limit)
            return Next(_hold(records, max(tick, admitted.seconds)), faults)
        try:
            records, answers = _fetch(provider, records)
        except TransientError as exc:
            faults += 1
            limit = bound(settings, "poll")
            if faults <= limit.faults:
                log.warning("batch polling of %s: batch fetch fault %d in a row (%s); %d jobs due again",
                            provider_name, faults, exc.message, len(records))
                return Next(_hold(records, max(tick, backoff_delay(faults, limit.base, limit.cap, exc.retry_after))),
                            faults)
            for record in records:  # as each job's own poll would after as many faults in a row
                polling_ended(end_job(record.id, JobState.FAILED, exc.code,
                                      f"gave up after {faults} attempts: {exc.message}", expect=WAITING_STATES))
                reschedule(record, None)
            faults = 0
            continue
        faults = 0
        fetched = time.monotonic()
        # The ended tasks first: their downloads (and their detection) wait for no one's merge.
        statuses = [answers.get(r.upstream_task_id or "") for r in records]
        order = sorted(range(len(records)), key=lambda i: _still_running(statuses[i]))
        list(_threads().map(_apply, [records[i] for i in order], [statuses[i] for i in order]))
        log.info("batch polling of %s: %d tasks in one call, %d answered; merged in %.2f s", provider_name,
                 len(records), len(answers), time.monotonic() - fetched)
        if len(claimed) < size:
            break
    return Next(tick, faults)


def _still_running(status: UpstreamStatus | None) -> bool:
    return status is None or status.outcome is Outcome.RUNNING


def _still_polled(key: str, claimed: list[str]) -> list[JobRecord]:
    """The claimed jobs still waiting on their upstream task; the others leave the due set."""
    store = runtime.store()

    def read(job_id: str) -> JobRecord | None:
        record = store.get(job_id)
        if (record is None or record.state not in WAITING_STATES or record.upstream_task_id is None
                or past_deadline(record)):
            poll_due.drop(store.redis, key, job_id)  # its polling is over
            return None
        return record

    return [r for r in _threads().map(read, claimed) if r is not None]


Answered = tuple[list[JobRecord], dict[str, UpstreamStatus]]


def _fetch(provider: BatchProvider, records: list[JobRecord]) -> Answered:
    """The jobs asked and the answers (by task id), in one call; a batch the relay refuses
    is asked again in halves (`_learn_cap`), and a relay that refuses even one id in a
    batch is asked task by task."""
    task_ids = [r.upstream_task_id or "" for r in records]
    try:
        with metrics.upstream_call(provider.name, "fetch"):
            fault_points.hit("poll.before_fetch")
            answers = provider.fetch_many(task_ids)
            fault_points.hit("poll.after_fetch")
        return records, answers
    except PermanentError as exc:
        if len(records) > 1:
            size = _learn_cap(provider.name, len(records))
            log.warning("batch polling of %s: a batch of %d refused (%s); batches of %d from now on",
                        provider.name, len(records), exc.message, size)
            asked: list[JobRecord] = []
            answered: dict[str, UpstreamStatus] = {}
            for start in range(0, len(records), size):
                part, part_answers = _fetch(provider, records[start:start + size])
                asked += part
                answered.update(part_answers)
            return asked, answered
        log.warning("batch polling of %s: batch fetch refused (%s); fetching the task alone",
                    provider.name, exc.message)
    return _fetch_alone(provider, records)


def _fetch_alone(provider: BatchProvider, records: list[JobRecord]) -> Answered:
    """Each task in a call of its own, each admitted by the rate limit. Only the answered
    jobs come back: the ones not asked (the limit said wait, or a transient fault) are due
    again, and a refused task fails its job."""
    store, settings = runtime.store(), runtime.settings()
    answered: list[JobRecord] = []
    answers: dict[str, UpstreamStatus] = {}
    for n, record in enumerate(records):
        task_id = record.upstream_task_id or ""
        if isinstance(gate.admit_poll(store.redis, settings, provider.name), gate.Wait):
            release(records[n:])
            break
        try:
            with metrics.upstream_call(provider.name, "fetch"):
                answers[task_id] = provider.fetch(task_id)
            answered.append(record)
        except TaskUnknown:
            answered.append(record)  # answered, without its task: counted as left out
        except TransientError:
            release([record])
        except PermanentError as exc:
            polling_ended(end_job(record.id, JobState.FAILED, exc.code, exc.message, expect=WAITING_STATES),
                          uncounted=1)
            reschedule(record, None)
    return answered, answers


def _hold(records: list[JobRecord], seconds: float) -> float:
    """The batch was not sent: its jobs are due again, and the watchdog's deadline moves
    past the drainer's wait, as a job polled alone pushes it when it waits. `seconds` back."""
    release(records)
    grace = runtime.settings().watchdog_grace
    for record in records:
        runtime.store().check_in(record.id, seconds + grace)
    return seconds


def release(records: list[JobRecord]) -> None:
    """Make claimed jobs due again now (their fetch was not made)."""
    now = time.time()
    for record in records:
        poll_due.schedule(runtime.store().redis, _key(record.provider), record.id, now)


def reschedule(record: JobRecord, countdown: float | None) -> None:
    """The job's next due time, or out of the due set once its polling is over."""
    redis, key = runtime.store().redis, _key(record.provider)
    if countdown is None:
        poll_due.drop(redis, key, record.id)
    else:
        poll_due.schedule(redis, key, record.id, time.time() + countdown)


def _apply(record: JobRecord, status: UpstreamStatus | None) -> None:
    """One job's answer, or its absence, under the job's own token; then its next due time."""
    try:
        countdown = (unknown_task.seen(record, record.token, unknown_task.LEFT_OUT) if status is None
                     else apply_status(record, record.token, status))
        reschedule(record, countdown)
    except Exception:  # noqa: BLE001 - one job's trouble must not cost the others their answers
        log.exception("job %s: applying its batch answer failed; it is due again", record.id)
        release([record])
