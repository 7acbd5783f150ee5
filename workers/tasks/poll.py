"""Step 2: ask the upstream how the task is doing, then look again later by countdown.

No worker slot waits on the upstream: each run is one fetch, and the next one is a
`retry(countdown=...)` of the same task. Finished songs are dispatched for download as
soon as they are seen, even while their sibling is still generating.

A provider that can fetch many tasks in one call (Suno) is polled in batches: this run only
marks its job due, and the provider's drainer fetches it with every other due task in one
call, applying each answer under that job's own token (workers/steps/poll_batch.py).

`once=True` is a one-shot poll, sent by the notify hook (producer/api/notify_hook.py) when the
gateway says the task changed: it fetches and merges under the same fencing token like any
poll, but never schedules another one, so the countdown chain stays the only chain.

Each link of the chain is named, and a link redelivered after it published its successor
drops itself (the `link` fence of workers/steps/step.py), so a worker killed between
`retry()` and the ack cannot leave two chains behind.
"""

from __future__ import annotations

from typing import Any

from celery.exceptions import Retry

from producer.core import task_names
from producer.core.models.job_record import WAITING_STATES, JobRecord
from workers import fault_points, metrics, runtime
from workers.admission import gate
from workers.celery_app import app
from workers.retry_policy import look_again
from workers.steps import poll_batch, unknown_task
from workers.steps.common import log, wait_for_limit
from workers.steps.poll_apply import apply_status, past_deadline, polling_ended
from workers.steps.step import Run, name_successor, step
from workers.task_base import SongqueueTask
from workers.upstream.errors import TaskUnknown, TransientError


class PollLink(SongqueueTask):
    """A poll task whose every retry (the next poll, a limit wait, a backoff) names its
    successor before publishing it (workers/steps/step.py)."""

    def retry(self, *args: Any, **options: Any) -> Any:
        job_id = self.request.args[0]
        token = self.request.args[1] if len(self.request.args) > 1 else self.request.kwargs.get("token", 0)
        kwargs = options.get("kwargs")
        store = runtime.store()
        link = name_successor(store.redis, store.prefix, job_id, int(token))
        options["kwargs"] = {**(self.request.kwargs if kwargs is None else kwargs), "link": link}
        try:
            return super().retry(*args, **options)
        except Retry:
            fault_points.hit("poll.after_retry")  # the successor is out; this link not yet acked
            raise


def _count_fault(run: Run, exc: TransientError) -> bool:
    """Before a transient fault's retry: count the fetch (the watchdog's deadline covers the
    longest backoff); a one-shot poll just yields, the chain carries on."""
    if run.args["once"]:
        log.info("job %s: one-shot poll hit a transient fault; the poll chain carries on: %s", run.job_id, exc.message)
        return False
    settings = runtime.settings()

    def count(record: JobRecord) -> None:
        record.attempts["poll"] = record.attempts.get("poll", 0) + 1
        record.waiting_for = None

    return runtime.store().apply(run.job_id, WAITING_STATES, mutate=count, token=run.args["token"],
                                 check_in=settings.retry_max_delay + settings.watchdog_grace) is not None


def _ended(run: Run, code: str, message: str, permanent: bool) -> None:
    # A permanent fault's fetch was not merged into the record: counted here.
    polling_ended(run.end_job(code, message), uncounted=int(permanent))


@app.task(name=task_names.POLL, bind=True, max_retries=None, base=PollLink)
@step("poll", expect=WAITING_STATES, fence="link", before_retry=_count_fault, end=_ended)
def poll(job: Run, token: int = 0, once: bool = False, faults: int = 0, link: str = "") -> None:
    """`faults`: transient faults in a row so far, counted by workers.retry_policy; `link`:
    this link's name in the job's poll chain ("" for the first)."""
    record = job.record
    if record.upstream_task_id is None or past_deadline(record):
        return
    store = runtime.store()
    settings = runtime.settings()
    provider = runtime.polled_provider(record.provider)
    if not once and poll_batch.batch_size(settings, provider) > 1:
        poll_batch.join(record)  # the provider's drainer fetches it, with every other due task
        return
    admitted = gate.admit_poll(store.redis, settings, record.provider)
    if isinstance(admitted, gate.Wait):
        if not once:  # a one-shot poll just yields: the chain's next poll is scheduled
            wait_for_limit(job.task, record, token, admitted, expect=WAITING_STATES)
        return
    try:
        with metrics.upstream_call(record.provider, "fetch"):
            fault_points.hit("poll.before_fetch")
            status = provider.fetch(record.upstream_task_id)
            fault_points.hit("poll.after_fetch")
    except TaskUnknown as exc:
        if once:
            return  # the chain's own polls count such answers
        countdown = unknown_task.seen(record, token, exc.seen)
        if countdown is None:
            return
        raise look_again(job.task, countdown) from None
    countdown = apply_status(record, token, status, once)
    if countdown is None or once:
        return  # polling is over, or (one-shot) the chain's next poll is already scheduled
    raise look_again(job.task, countdown)
