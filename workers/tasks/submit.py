"""Step 1: send the paid generation request, once.

The ledger: the intent is written (QUEUED -> SUBMITTING) before the upstream call and the
upstream task id (SUBMITTING -> SUBMITTED) right after it. A run that finds SUBMITTING
with no task id is a redelivery after a crash mid-call: the upstream may have billed, so
it follows SONGQUEUE_UNCERTAIN_SUBMIT rather than silently submitting again.
"""

from __future__ import annotations

import time

from celery import Task

from producer import task_names
from producer.models.job_record import JobRecord, JobState
from workers import metrics, runtime
from workers.admission import budget
from workers.admission import limits
from workers.celery_app import app
from workers.providers import registry
from workers.providers.base import SyncProvider
from workers.retry_policy import backoff_delay
from workers.tasks.common import end_job, log, send, wait_for_limit
from workers.tasks.generated import accept_songs
from workers.upstream.errors import PermanentError, TransientError


@app.task(name=task_names.SUBMIT, bind=True, max_retries=None)
def submit(self: Task, job_id: str, token: int = 0) -> None:
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

    def intend(r: JobRecord) -> None:
        r.submit_intent_at = time.time()
        r.attempts["submit"] = r.attempts.get("submit", 0) + 1
        r.waiting_for = None

    provider = runtime.provider(record.provider)
    price = registry.call_price(settings, provider, record.model)
    try:
        reservation, held = _admit(record, price)
    except limits.JobMovedOn:
        return
    if isinstance(held, budget.OverBudget) and settings.budget_policy == "fail":
        end_job(job_id, JobState.FAILED, "budget_exceeded", held.message(), expect={record.state})
        return
    if held is not None:
        wait = held if isinstance(held, limits.Wait) else held.wait(settings)
        wait_for_limit(self, record, token, wait, expect={record.state})
        return
    # A synchronous provider's call lasts as long as its generation: provider.timeout.
    # Only from exactly what was read: of two deliveries of one message, one submits.
    record = store.apply(job_id, {record.state}, mutate=intend, to=JobState.SUBMITTING, version=record.version,
                         check_in=provider.timeout + settings.watchdog_grace)
    if record is None:
        budget.refund(store.redis, reservation)
        return
    sync = isinstance(provider, SyncProvider)
    try:
        with metrics.upstream_call(record.provider, "generate" if sync else "submit"):
            answer = provider.generate(record.request) if sync else provider.submit(record.request)
    except TransientError as exc:
        if exc.maybe_accepted:
            # Leave the intent in place: the redelivered or retried run decides by policy.
            # The reservation stays too: the call may have been billed.
            log.warning("job %s: submit outcome unknown: %s", job_id, exc.message, extra={"job_id": job_id})
            raise self.retry(countdown=1)
        budget.refund(store.redis, reservation)
        _back_off(self, job_id, exc)
        return
    except PermanentError as exc:
        budget.refund(store.redis, reservation)
        end_job(job_id, JobState.FAILED, exc.code, exc.message)
        return

    if sync:
        accept_songs(job_id, answer, price)
        return
    task_id = answer
    now = time.time()
    first_poll = settings.poll_schedule(record.provider)[0]

    def record_task(r: JobRecord) -> None:
        r.upstream_task_id = task_id
        r.submitted_at = now
        r.transient_errors = 0
        r.cost += price
        r.deadline_at = now + registry.deadline_seconds(settings, r.provider)

    check_in = first_poll + settings.watchdog_grace
    if store.apply(job_id, {JobState.SUBMITTING}, mutate=record_task, to=JobState.SUBMITTED,
                   check_in=check_in) is None:
        # Cancelled meanwhile: keep the paid task's id and price on the record for accounting.
        def keep(r: JobRecord) -> None:
            r.upstream_task_id = task_id
            r.cost += price

        store.apply(job_id, set(JobState), mutate=keep)
        return
    if settings.notify_hook_url:
        # The notify hook finds the job by the upstream's task id; kept as long as the
        # upstream may still call about it.
        store.index_upstream_task(record.provider, task_id, job_id,
                                  registry.deadline_seconds(settings, record.provider) + 3600)
    log.info("job %s: submitted as upstream task %s", job_id, task_id,
             extra={"job_id": job_id, "upstream_task_id": task_id})
    send(task_names.POLL, job_id, token, countdown=first_poll, record=record)


def _admit(record: JobRecord, price: float) -> tuple[budget.Reservation | None, limits.Wait | budget.OverBudget | None]:
    """Pass the shared limits and the budget, in that order: (reservation, what holds the job).

    A place in flight taken before a later check says wait is given back, so a waiting job
    never counts as in flight. Raises limits.JobMovedOn when the job is no longer to submit.
    """
    client = runtime.store().redis
    settings = runtime.settings()
    wait = limits.admit_in_flight(client, settings, record.id, record.provider)
    if wait is not None:
        return None, wait
    wait = limits.take_token(client, settings, record.provider, "submit")
    if wait is not None:
        limits.release_in_flight(client, settings, record.id, record.provider)
        return None, wait
    reserved = budget.reserve(client, settings, record.provider, price)
    if isinstance(reserved, budget.OverBudget):
        limits.release_in_flight(client, settings, record.id, record.provider)
        return None, reserved
    return reserved, None


def resolve_uncertain(record: JobRecord) -> bool:
    """An intent without a task id: the paid call may have gone through. True = submit again."""
    if runtime.settings().uncertain_submit == "fail":
        end_job(
            record.id, JobState.FAILED, "submit_uncertain",
            "the submit was interrupted after it may have reached the upstream; not resubmitted "
            "automatically (SONGQUEUE_UNCERTAIN_SUBMIT=fail). Check the upstream account, then "
            "retry the job by hand.",
            expect={JobState.SUBMITTING},
        )
        return False
    log.warning("job %s: resubmitting after an uncertain submit (SONGQUEUE_UNCERTAIN_SUBMIT=resubmit)", record.id)
    return True


def _back_off(task: Task, job_id: str, exc: TransientError) -> None:
    """Nothing was accepted upstream: return to QUEUED and try again later, within a bound."""
    settings = runtime.settings()

    def count(r: JobRecord) -> None:
        r.transient_errors += 1
        r.submit_intent_at = None

    record = runtime.store().apply(job_id, {JobState.SUBMITTING}, mutate=count, to=JobState.QUEUED,
                                   check_in=settings.retry_max_delay + settings.watchdog_grace)
    if record is None:
        return
    if record.transient_errors > settings.max_transient_errors:
        end_job(job_id, JobState.FAILED, exc.code, f"gave up after {record.transient_errors} attempts: {exc.message}")
        return
    delay = backoff_delay(record.transient_errors, settings.retry_base_delay, settings.retry_max_delay, exc.retry_after)
    log.info("job %s: submit will retry in %.1fs: %s", job_id, delay, exc.message)
    raise task.retry(countdown=delay)
