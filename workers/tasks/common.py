"""What every step does alike: send the next step, end a job with an error."""

from __future__ import annotations

import logging
from collections.abc import Collection

from producer.job_record import JobError, JobRecord, JobState
from workers import runtime
from workers.celery_app import app

log = logging.getLogger("songqueue.tasks")

LIVE_STATES = frozenset(
    {JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.GENERATING, JobState.DOWNLOADING}
)


def send(task_name: str, job_id: str, *args: object, countdown: float | None = None) -> None:
    app.send_task(task_name, args=[job_id, *args], countdown=countdown, argsrepr=f"job={job_id}" + "".join(f" {a}" for a in args))


def end_job(
    job_id: str, state: JobState, code: str, message: str, expect: Collection[JobState] = LIVE_STATES
) -> JobRecord | None:
    def note(record: JobRecord) -> None:
        record.error = JobError(code=code, message=message)

    record = runtime.store().apply(job_id, expect, mutate=note, to=state)
    if record is not None:
        log.warning("job %s: %s (%s): %s", job_id, state.value, code, message)
    return record
