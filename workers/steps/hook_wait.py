"""An uncertain submit waits for the gateway's notify hook to name its task.

When the paid call's answer is lost (a 5xx, a timeout, a dropped connection, a worker
that died mid-call), a gateway that calls the job's signed notify URL will still tell us
the task id it created: the hook server notes it on the record (`notified_task_id`,
producer/ops/hook_server.py) and sends the submit again, which then records that id as if
the answer had come (workers/tasks/submit.py). Meanwhile the job stays SUBMITTING with
`uncertain_submit` set and its watchdog deadline at the end of the wait; a hook that
never comes leaves the decision to SONGQUEUE_UNCERTAIN_SUBMIT, with the reason kept.

Only for a provider whose gateway calls hooks, with per-job URLs signed
(producer/client/hook_link.py); otherwise nothing here runs and nothing changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from producer.client import hook_link
from producer.models.job_record import JobRecord, JobState, UncertainSubmit
from producer.models.providers import provider_spec
from workers import runtime
from workers.steps.common import log

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
