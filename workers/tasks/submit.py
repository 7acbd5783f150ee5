"""Step 1: send the paid generation request, once.

The ledger: the intent is written (QUEUED -> SUBMITTING) before the upstream call and the
upstream task id (SUBMITTING -> SUBMITTED) right after it. A run that finds SUBMITTING
with no task id is a redelivery after a crash mid-call: the upstream may have billed, so
it follows SONGQUEUE_UNCERTAIN_SUBMIT rather than silently submitting again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from producer.core import deadlines, hook_link, task_names
from producer.core.models.job_record import LIVE_STATES, JobRecord, JobState
from producer.core.store import replication
from producer.core.store.optimistic import Writes
from workers import fault_points, metrics, runtime
from workers.admission import gate, key_limits
from workers.admission.budget import Reservation
from workers.admission.gate import PARKING_LIMITS
from workers.celery_app import app
from workers.providers import registry
from workers.providers.base import SyncProvider
from workers.providers.registry import Provider
from workers.steps import ledger, paid, uncertain
from workers.steps.common import end_job, log, park, wait_for_limit
from workers.steps.step import Run, step
from workers.upstream.errors import PermanentError, TransientError
from workers.upstream.http_client import CONNECT_TIMEOUT


@app.task(name=task_names.SUBMIT, bind=True, max_retries=None)
@step("submit", expect={JobState.QUEUED, JobState.SUBMITTING}, fence="token", ends=LIVE_STATES)
def submit(job: Run, token: int = 0, faults: int = 0) -> None:
    """`faults`: transient faults in a row so far, counted by workers.retry_policy."""
    settings = runtime.settings()
    store = runtime.store()
    record, job_id = job.record, job.job_id
    if record.state == JobState.SUBMITTING and (record.upstream_task_id is not None or not uncertain.resolve(record)):
        return
    if record.state == JobState.QUEUED and record.cancel_after is not None and time.time() >= record.cancel_after:
        end_job(job_id, JobState.CANCELLED, *deadlines.before_submit(record), expect={JobState.QUEUED})
        return  # nothing called: the caller stopped wanting it before its turn came
    if record.attempts.get("submit", 0) >= settings.max_submit_attempts:
        end_job(job_id, JobState.FAILED, "submit_attempts_exhausted",
                f"the submit was tried {record.attempts.get('submit', 0)} times (SONGQUEUE_MAX_SUBMIT_ATTEMPTS="
                f"{settings.max_submit_attempts}) without an answer to keep; not tried again",
                expect={record.state})
        return

    intent = ledger.new_intent()  # names this run's paid call: charged once (workers/steps/ledger.py)

    def intend(r: JobRecord) -> None:
        r.submit_intent_at = time.time()
        r.submit_intent_id = intent
        r.attempts["submit"] = r.attempts.get("submit", 0) + 1
        r.waiting_for = None
        r.parked = None
        r.uncertain_submit = None  # a new call: any earlier wait for the hook is over
        r.notified_task_id = None

    provider = runtime.provider(record.provider)
    price = registry.call_price(settings, provider, record.model)
    admitted = gate.admit_submit(store.redis, settings, record, price)
    if isinstance(admitted, gate.MovedOn):
        return
    if isinstance(admitted, gate.OverBudget):
        end_job(job_id, JobState.FAILED, "budget_exceeded", admitted.message(), expect={record.state})
        return
    if isinstance(admitted, gate.Wait) and admitted.limit in PARKING_LIMITS:
        park(record, token, admitted, expect={record.state})
        return
    if isinstance(admitted, gate.Wait):
        wait_for_limit(job.task, record, token, admitted, expect={record.state})
        return
    reservations = admitted.reservations
    fault_points.hit("submit.after_admit")  # reserved, the intent not yet written

    def commit(writes: Writes) -> None:
        for reservation in reservations:
            writes.hdel(reservation.pending, reservation.id)

    # A synchronous provider's call lasts as long as its generation: provider.timeout (the
    # whole call is bounded by it, plus the connect timeout). Only from exactly what was
    # read: of two deliveries of one message, one submits. The intent commits the budget
    # reservations in the same atomic step (workers/admission/budget.py).
    written = store.apply(job_id, {record.state}, mutate=intend, to=JobState.SUBMITTING, version=record.version,
                          check_in=provider.timeout + CONNECT_TIMEOUT + settings.watchdog_grace, also=commit)
    if written is None:
        gate.settle(store.redis, reservations, billed=False, committed=False)
        gate.release_places(store.redis, settings, record, key_limits.key_of(store.redis, settings, record))
        return  # moved on meanwhile: nothing was called
    job.before_retry = _undo_intent  # a transient fault from here on: this intent goes first
    short = replication.replicated(store.redis, store.prefix, settings.redis_min_replicas)
    if short is not None:
        # An intent a failover could lose must not be paid for: back to QUEUED, try later.
        # Its reservations go back in the write that takes this very intent back (same
        # version), not now: across a partition the intent may have reached a replica whose
        # acknowledgement was lost, and the side that holds it may yet charge the job for it
        # (submit_uncertain); given back here, the ledger ended a call short of the costs.
        version = written.version
        job.before_retry = lambda run, exc: _undo_intent(run, exc, version=version, give_back=reservations)
        raise TransientError("redis_not_replicated", (
            f"the submit intent reached {short} of SONGQUEUE_REDIS_MIN_REPLICAS={settings.redis_min_replicas} "
            f"Redis replicas within {replication.WAIT_SECONDS:g}s; the upstream was not called"))
    call = _call(provider, written)
    gate.settle(store.redis, reservations, billed=call.may_be_billed, committed=True)
    if call.fault is not None and call.may_be_billed:
        paid.charge_call(job_id, intent, price)  # no refund for a billed but unusable (or lost) answer
    if (isinstance(call.fault, TransientError) and call.fault.maybe_accepted
            and not uncertain.resolve(written, call.fault.message, charged=True)):
        return
    if call.fault is not None:
        raise call.fault  # the one retry policy, or the job's end (workers/steps/step.py)
    if isinstance(provider, SyncProvider):
        paid.accept_songs(job_id, call.answer, price, written.token, intent)
        return
    paid.record_task(written, call.answer, price, intent)


@dataclass(frozen=True)
class _Call:
    answer: Any = None
    fault: TransientError | PermanentError | None = None

    @property
    def may_be_billed(self) -> bool:
        return self.fault is None or self.fault.maybe_accepted


def _call(provider: Provider, record: JobRecord) -> _Call:
    """The paid call: a task id (asynchronous provider) or songs (synchronous), or its fault."""
    fault_points.hit("submit.before_call")
    try:
        if isinstance(provider, SyncProvider):
            with metrics.upstream_call(record.provider, "generate"):
                return _Call(provider.generate(record.request))
        with metrics.upstream_call(record.provider, "submit"):
            hook = hook_link.job_hook_url(runtime.settings(), record.provider, record.id, record.run)
            task_id = provider.submit(record.request, notify_hook=hook)
        # Paid: in the log the moment it is known, before anything (a reservation settled,
        # the record) is written, so no later fault can lose it.
        log.info("job %s: the upstream answered the submit with task %s", record.id, task_id,
                 extra={"job_id": record.id, "upstream_task_id": task_id})
        return _Call(task_id)
    except (TransientError, PermanentError) as exc:
        return _Call(fault=exc)


def _undo_intent(run: Run, exc: TransientError, version: int | None = None,
                 give_back: tuple[Reservation, ...] = ()) -> bool:
    """Before a transient fault's retry, once the intent is written: leave it when the call
    may have been accepted (the retried run decides by SONGQUEUE_UNCERTAIN_SUBMIT), else back
    to QUEUED, to be admitted again. False: the job moved on, no retry.

    `version`: only if the record is still the one the intent wrote; `give_back`: budget
    reservations the intent committed, returned in the same write (no call was made)."""
    settings = runtime.settings()
    check_in = settings.retry_max_delay + settings.watchdog_grace
    if exc.maybe_accepted:
        log.warning("job %s: submit outcome unknown: %s", run.job_id, exc.message, extra={"job_id": run.job_id})
        runtime.store().check_in(run.job_id, check_in)
        return True

    def clear(r: JobRecord) -> None:
        r.submit_intent_at = None

    def returned(writes: Writes) -> None:
        for reservation in give_back:
            writes.decrby(reservation.key, reservation.micros)

    if runtime.store().apply(run.job_id, {JobState.SUBMITTING}, mutate=clear, to=JobState.QUEUED, version=version,
                             check_in=check_in, also=returned) is None:
        return False
    log.info("job %s: submit will retry: %s", run.job_id, exc.message)
    return True
