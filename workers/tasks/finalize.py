"""Step 4: write the job's manifest.json and mark it SUCCEEDED (workers/steps/finalize.py).

Usually done inside the download run whose write stored the job's last object
(workers/tasks/download.py); this task remains for the watchdog's resend, the retry after
a transient fault, and a poll that finds every asset already stored."""

from __future__ import annotations

from celery import Task

from producer.core import task_names
from workers import runtime
from workers.celery_app import app
from workers.steps.finalize import finalize_ready


@app.task(name=task_names.FINALIZE, bind=True, max_retries=None)
def finalize(self: Task, job_id: str, run: int = 0, faults: int = 0) -> None:
    """`run`: the job's run the message belongs to; `faults`: transient faults in a row so
    far, counted by workers.retry_policy."""
    record = runtime.store().get(job_id)
    if record is not None:
        finalize_ready(record, run, task=self)
