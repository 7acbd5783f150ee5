"""An uncertain submit: the paid call may have gone through. `resolve` decides: adopt the task
id the notify hook named, wait for the hook, end the job, or submit again.

When the paid call's answer is lost (a 5xx, a timeout, a dropped connection, a worker
that died mid-call), a gateway that calls the job's signed notify URL will still tell us
the task id it created: the hook server notes it on the record (`notified_task_id`,
producer/api/notify_hook.py) and sends the submit again, which then records that id as if
the answer had come (workers/tasks/submit.py). Meanwhile the job stays SUBMITTING with
`uncertain_submit` set and its watchdog deadline at the end of the wait; a hook that
never comes leaves the decision to SONGQUEUE_UNCERTAIN_SUBMIT, with the reason kept.

Only for a provider whose gateway calls hooks, with per-job URLs signed
(producer/core/hook_link.py); otherwise nothing here runs and nothing changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from producer.core import hook_link
from producer.core.models.job_record import JobRecord, JobState, UncertainSubmit
from producer.core.models.providers import provider_spec
from workers import runtime
from workers.providers import registry
from workers.providers.base import SyncProvider
from workers.steps.common import end_job, log
from workers.steps.paid import accept_staged, record_task, staged_answer

# Tries of the compare-and-set against a hook writing the same record at the same moment.
_TRIES = 5


@dataclass(frozen=True)
class Reconcile:
    """The hook named the task: record it (`charge`: the call's price is not on the job yet)."""

    record: JobRecord
    task_id: str
    charge: bool


@dataclass(frozen=True)
class Wait:
    """Nothing to do now: waiting for the hook, or the job moved on."""


@dataclass(frozen=True)
class GiveUp:
    """No hook named the task in time: SONGQUEUE_UNCERTAIN_SUBMIT decides, for this reason."""

    reason: str


def applies(record: JobRecord) -> bool:
    return provider_spec(record.provider).notify_hook and hook_link.signed(runtime.settings())


def decide(record: JobRecord, what: str, charged: bool) -> Reconcile | Wait | GiveUp:
    """`what`: why the outcome is unknown; `charged`: this run already charged the call."""
    store = runtime.store()
    wait = runtime.settings().uncertain_hook_wait
    for _ in range(_TRIES):
        if record.state != JobState.SUBMITTING or record.upstream_task_id is not None:
            return Wait()  # moved on meanwhile
        pending = record.uncertain_submit
        if record.notified_task_id:
            return Reconcile(record, record.notified_task_id, charge=not (pending.charged if pending else charged))
        now = time.time()
        if pending is not None:
            left = pending.since + wait - now
            if left <= 0:
                return GiveUp(f"{pending.reason}, and no notify hook named its task within "
                              f"SONGQUEUE_UNCERTAIN_HOOK_WAIT={wait:g} s")
            store.check_in(record.id, left)
            return Wait()
        if wait <= 0:
            return GiveUp(what)

        started = UncertainSubmit(since=now, reason=what, charged=charged)

        def begin(r: JobRecord, started: UncertainSubmit = started) -> None:
            r.uncertain_submit = started
            r.waiting_for = "the notify hook (the submit's outcome is unknown; the gateway may still name its task)"

        # Fenced on what was read: a hook that noted a task id meanwhile is seen on the re-read.
        written = store.apply(record.id, {JobState.SUBMITTING}, mutate=begin, version=record.version, check_in=wait)
        if written is not None:
            log.warning("job %s: submit outcome unknown (%s); waiting up to %g s for the notify hook to name "
                        "its task", record.id, what, wait, extra={"job_id": record.id})
            return Wait()
        fresh = store.get(record.id)
        if fresh is None:
            return Wait()
        record = fresh
    return Wait()  # contended every time: the watchdog looks again at the job's deadline


INTERRUPTED = "the worker stopped during the paid call (it was redelivered or found overdue by the watchdog)"


def resolve(record: JobRecord, what: str = INTERRUPTED, charged: bool = False) -> bool:
    """The paid call may have gone through (`what` says why we cannot tell). True = submit again.

    Where the gateway calls the job's signed notify hook, the task id the hook names is
    recorded as the call's answer, and until it comes the job waits up to
    SONGQUEUE_UNCERTAIN_HOOK_WAIT (workers/steps/uncertain.py). Then, or without a hook:
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
    if applies(record):
        verdict = decide(record, what, charged)
        if isinstance(verdict, Reconcile):
            log.warning("job %s: the notify hook named upstream task %s: recording it as the submit's answer",
                        record.id, verdict.task_id, extra={"job_id": record.id, "upstream_task_id": verdict.task_id})
            settings = runtime.settings()
            price = registry.call_price(settings, runtime.provider(record.provider), record.model)
            record_task(verdict.record, verdict.task_id, price if verdict.charge else 0.0,
                         verdict.record.submit_intent_id)
            return False
        if isinstance(verdict, Wait):
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
