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

from celery import Task

from producer import task_names
from producer.client import hook_link
from producer.models.job_record import JobRecord, JobState
from producer.store import replication
from producer.store.optimistic import Writes
from workers import fault_points, metrics, runtime
from workers.admission import gate
from workers.celery_app import app
from workers.providers import registry
from workers.providers.base import SyncProvider
from workers.providers.registry import Provider
from workers.retry_policy import retry_or_give_up
from workers.steps import charges, hook_wait
from workers.steps.common import end_job, log, send, wait_for_limit
from workers.steps.written import until_written
from workers.tasks.generated import accept_songs, accept_staged, staged_answer
from workers.upstream.errors import PermanentError, TransientError
from workers.upstream.http_client import CONNECT_TIMEOUT


@app.task(name=task_names.SUBMIT, bind=True, max_retries=None)
def submit(self: Task, job_id: str, token: int = 0, faults: int = 0) -> None:
    """`faults`: transient faults in a row so far, counted by workers.retry_policy."""
    store = runtime.store()
    settings = runtime.settings()
    record = store.get(job_id)
    if record is None:
        log.warning("job %s: submit for an unknown job", job_id)
        return
    if record.token != token:
        return  # the watchdog has handed this step to a newer message
    if record.state == JobState.SUBMITTING and record.upstream_task_id is None:
        if not resolve_uncertain(record):
            return
    elif record.state != JobState.QUEUED:
        return
    if record.attempts.get("submit", 0) >= settings.max_submit_attempts:
        end_job(job_id, JobState.FAILED, "submit_attempts_exhausted",
                f"the submit was tried {record.attempts.get('submit', 0)} times (SONGQUEUE_MAX_SUBMIT_ATTEMPTS="
                f"{settings.max_submit_attempts}) without an answer to keep; not tried again",
                expect={record.state})
        return

    intent = charges.new_intent()  # names this run's paid call: charged once (workers/steps/charges.py)

    def intend(r: JobRecord) -> None:
        r.submit_intent_at = time.time()
        r.submit_intent_id = intent
        r.attempts["submit"] = r.attempts.get("submit", 0) + 1
        r.waiting_for = None
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
    if isinstance(admitted, gate.Wait):
        wait_for_limit(self, record, token, admitted, expect={record.state})
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
    record = store.apply(job_id, {record.state}, mutate=intend, to=JobState.SUBMITTING, version=record.version,
                         check_in=provider.timeout + CONNECT_TIMEOUT + settings.watchdog_grace, also=commit)
    short = None if record is None else replication.replicated(store.redis, store.prefix, settings.redis_min_replicas)
    if short is not None:
        # An intent a failover could lose must not be paid for: back to QUEUED, try later.
        gate.settle(store.redis, reservations, billed=False, committed=True)
        _retry(self, job_id, TransientError("redis_not_replicated", (
            f"the submit intent reached {short} of SONGQUEUE_REDIS_MIN_REPLICAS={settings.redis_min_replicas} "
            f"Redis replicas within {replication.WAIT_SECONDS:g}s; the upstream was not called")))
        return
    call = None if record is None else _call(provider, record)
    gate.settle(store.redis, reservations, billed=call is not None and call.may_be_billed, committed=record is not None)
    if record is None or call is None:
        return  # moved on meanwhile: nothing was called
    if call.fault is not None and call.may_be_billed:
        _charge(job_id, intent, price)  # no refund for a billed but unusable (or lost) answer
    if isinstance(call.fault, TransientError):
        if call.fault.maybe_accepted and not resolve_uncertain(record, call.fault.message, charged=True):
            return
        _retry(self, job_id, call.fault)
        return
    if isinstance(call.fault, PermanentError):
        end_job(job_id, JobState.FAILED, call.fault.code, call.fault.message)
        return
    if isinstance(provider, SyncProvider):
        accept_songs(job_id, call.answer, price, record.token, intent)
        return
    _record_task(record, call.answer, price, intent)


@dataclass(frozen=True)
class _Call:
    answer: Any = None
    fault: TransientError | PermanentError | None = None

    @property
    def may_be_billed(self) -> bool:
        return self.fault is None or self.fault.maybe_accepted


def _charge(job_id: str, intent: str, price: float) -> None:
    def charge(r: JobRecord) -> None:
        charges.charge(r, intent, price)

    runtime.store().apply(job_id, set(JobState), mutate=charge)


def _call(provider: Provider, record: JobRecord) -> _Call:
    """The paid call: a task id (asynchronous provider) or songs (synchronous), or its fault."""
    fault_points.hit("submit.before_call")
    try:
        if isinstance(provider, SyncProvider):
            with metrics.upstream_call(record.provider, "generate"):
                return _Call(provider.generate(record.request))
        with metrics.upstream_call(record.provider, "submit"):
            hook = hook_link.job_hook_url(runtime.settings(), record.provider, record.id)
            return _Call(provider.submit(record.request, notify_hook=hook))
    except (TransientError, PermanentError) as exc:
        return _Call(fault=exc)


def _record_task(record: JobRecord, task_id: str, price: float, intent: str | None) -> None:
    """SUBMITTING -> SUBMITTED with the upstream's task id, then the first poll.

    The id is paid for: it is logged before anything else, and its write is retried until
    Redis takes it. The write is fenced by the token this run's intent was written under,
    so a run the watchdog resent meanwhile is never overwritten by a slow original.
    `intent`: the intent the call was made under; its price is charged once, whichever
    write gets there first (this one, a retry of it, or the end of an uncertain submit).
    """
    store = runtime.store()
    settings = runtime.settings()
    job_id = record.id
    log.warning("job %s: upstream accepted it as task %s (paid; recording it)", job_id, task_id,
                extra={"job_id": job_id, "upstream_task_id": task_id})
    now = time.time()
    first_poll = settings.poll_schedule(record.provider)[0]

    def note(r: JobRecord) -> None:
        r.upstream_task_id = task_id
        r.waiting_for = None  # a submit reconciled from the notify hook waited for it
        r.submitted_at = now
        charges.charge(r, intent, price)
        r.deadline_at = now + registry.deadline_seconds(settings, r.provider)

    check_in = first_poll + settings.watchdog_grace

    def write() -> JobRecord | None:
        fault_points.hit("submit.after_call")  # logged, not yet written
        return store.apply(job_id, {JobState.SUBMITTING}, mutate=note, to=JobState.SUBMITTED, token=record.token,
                           check_in=check_in)

    written = until_written(job_id, f"upstream task {task_id}", write)
    if written is None:
        _keep_paid_task(job_id, task_id, price, intent)
        return
    if settings.notify_hook_url:
        # The notify hook finds the job by the upstream's task id; kept as long as the
        # upstream may still call about it.
        store.index_upstream_task(record.provider, task_id, job_id,
                                  registry.deadline_seconds(settings, record.provider) + 3600)
    fault_points.hit("submit.after_record")
    log.info("job %s: submitted as upstream task %s", job_id, task_id,
             extra={"job_id": job_id, "upstream_task_id": task_id})
    send(task_names.POLL, job_id, record.token, countdown=first_poll, record=record)


def _keep_paid_task(job_id: str, task_id: str, price: float, intent: str | None) -> None:
    """The job moved on while its paid call ran (cancelled, failed uncertain, or resent), or
    the write above landed but its answer was lost: the call is charged, unless that was
    done already (by the end of an uncertain submit, or by the write that did land), and
    the id kept when the record has none."""
    def keep(r: JobRecord) -> None:
        charges.charge(r, intent, price)
        if r.upstream_task_id is None:
            r.upstream_task_id = task_id

    kept = until_written(job_id, f"upstream task {task_id}",
                         lambda: runtime.store().apply(job_id, set(JobState), mutate=keep))
    if kept is not None and kept.upstream_task_id != task_id:
        log.error("job %s: upstream task %s was paid but the job already runs as task %s",
                  job_id, task_id, kept.upstream_task_id, extra={"job_id": job_id, "upstream_task_id": task_id})


INTERRUPTED = "the worker stopped during the paid call (it was redelivered or found overdue by the watchdog)"


def resolve_uncertain(record: JobRecord, what: str = INTERRUPTED, charged: bool = False) -> bool:
    """The paid call may have gone through (`what` says why we cannot tell). True = submit again.

    Where the gateway calls the job's signed notify hook, the task id the hook names is
    recorded as the call's answer, and until it comes the job waits up to
    SONGQUEUE_UNCERTAIN_HOOK_WAIT (workers/steps/hook_wait.py). Then, or without a hook:
    under SONGQUEUE_UNCERTAIN_SUBMIT=fail (the default) the job ends FAILED with
    `submit_uncertain` and a sentence an operator can act on; it is never resubmitted.
    `charged`: the caller already charged the call's price; otherwise (the worker stopped
    during the call) its reservation stayed in the spend ledger, so the job is charged that
    call in the same write that ends it, keyed by the record's intent: the run that made
    the call, still alive and answering later (the message was redelivered while it ran),
    finds it charged and does not charge it again.
    """
    provider = runtime.provider(record.provider)
    if isinstance(provider, SyncProvider):
        staged = staged_answer(record)
        if staged:
            # The call answered and its songs were staged before the run died: not uncertain.
            # Charged under the intent, so a caller that charged it already is not charged again.
            accept_staged(record, staged, registry.call_price(runtime.settings(), provider, record.model))
            return False
    if hook_wait.applies(record):
        verdict = hook_wait.decide(record, what, charged)
        if isinstance(verdict, hook_wait.Reconcile):
            log.warning("job %s: the notify hook named upstream task %s: recording it as the submit's answer",
                        record.id, verdict.task_id, extra={"job_id": record.id, "upstream_task_id": verdict.task_id})
            settings = runtime.settings()
            price = registry.call_price(settings, runtime.provider(record.provider), record.model)
            _record_task(verdict.record, verdict.task_id, price if verdict.charge else 0.0,
                         verdict.record.submit_intent_id)
            return False
        if isinstance(verdict, hook_wait.Wait):
            return False
        what = verdict.reason
    if runtime.settings().uncertain_submit == "fail":
        price = registry.call_price(runtime.settings(), runtime.provider(record.provider), record.model)
        end_job(
            record.id, JobState.FAILED, "submit_uncertain",
            f"the submit's outcome is unknown: {what}. The upstream may have accepted and billed it, so it "
            "was not sent again (SONGQUEUE_UNCERTAIN_SUBMIT=fail). Look for a task with this prompt in the "
            f"upstream account (sent {_when(record.submit_intent_at)}); if there is none, `songqueue retry "
            f"{record.id}` submits it anew.",
            expect={JobState.SUBMITTING}, call_price=0.0 if charged else price,
        )
        return False
    log.warning("job %s: resubmitting after an uncertain submit (%s; SONGQUEUE_UNCERTAIN_SUBMIT=resubmit)",
                record.id, what, extra={"job_id": record.id})
    return True


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at)) if at else "at an unknown time"


def _retry(task: Task, job_id: str, exc: TransientError) -> None:
    """A transient fault: retry by the policy, or end the job past its bound."""
    settings = runtime.settings()
    check_in = settings.retry_max_delay + settings.watchdog_grace
    if exc.maybe_accepted:
        # Leave the intent in place: the retried run decides by SONGQUEUE_UNCERTAIN_SUBMIT.
        log.warning("job %s: submit outcome unknown: %s", job_id, exc.message, extra={"job_id": job_id})
        runtime.store().check_in(job_id, check_in)
    else:
        # Nothing was accepted upstream: back to QUEUED, to be admitted again.
        def clear(r: JobRecord) -> None:
            r.submit_intent_at = None

        if runtime.store().apply(job_id, {JobState.SUBMITTING}, mutate=clear, to=JobState.QUEUED,
                                 check_in=check_in) is None:
            return
        log.info("job %s: submit will retry: %s", job_id, exc.message)
    retry_or_give_up(task, settings, "submit", exc.message, retry_after=exc.retry_after,
                     give_up=lambda message: end_job(job_id, JobState.FAILED, exc.code, message))
