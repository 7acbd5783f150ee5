"""Step 4: write the job's manifest.json and mark it SUCCEEDED (workers/steps/finalize.py).

Usually done inside the download run whose write stored the job's last object
(workers/tasks/download.py); this task remains for the watchdog's resend, the retry after
a transient fault, and a poll that finds every asset already stored."""

from __future__ import annotations

from producer.core import task_names
from producer.core.models.job_record import JobState
from workers.celery_app import app
from workers.steps.finalize import finalize_ready
from workers.steps.step import Run, step


@app.task(name=task_names.FINALIZE, bind=True, max_retries=None)
@step("finalize", expect={JobState.DOWNLOADING}, fence="run")
def finalize(job: Run, run: int = 0, faults: int = 0) -> None:
    """`run`: the job's run the message belongs to; `faults`: transient faults in a row so
    far, counted by workers.retry_policy. Its faults are finalize_ready's own: a download
    run finalizes too, with no task to retry."""
    finalize_ready(job.record, run, task=job.task)
