"""The drainer of a batch-polled provider: one chain per provider, a run every tick.

Started by the first job that joins the provider's due set while no drainer runs
(workers/steps/poll_batch.py, which holds the logic and the design). Each run fetches every
due batch and then looks again by countdown, like any poll: no worker slot waits. It ends
when no job is left, or when another drainer has taken the role over (this one's lapsed).
"""

from __future__ import annotations

from celery import Task

from producer.core import task_names
from workers.celery_app import app
from workers.steps import poll_batch


@app.task(name=task_names.POLL_DRAIN, bind=True, max_retries=None)
def poll_drain(self: Task, provider: str, token: str, faults: int = 0) -> None:
    """`faults`: the batch call's transient faults in a row so far."""
    then = poll_batch.drain(provider, token, faults)
    if then is not None:
        raise self.retry(args=[provider, token], kwargs={"faults": then.faults}, countdown=then.countdown)
