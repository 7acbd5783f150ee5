"""Step 4: write the job's manifest.json and mark it SUCCEEDED."""

from __future__ import annotations

from celery import Task

from producer import task_names
from producer.client.callbacks import TERMINAL_EVENTS, announce
from producer.models.job_record import JobState
from workers import runtime
from workers.celery_app import app
from workers.artifacts.manifest import write_manifest
from workers.retry_policy import backoff_delay
from workers.tasks.common import end_job, log
from workers.upstream.errors import PermanentError, TransientError


@app.task(name=task_names.FINALIZE, bind=True, max_retries=None)
def finalize(self: Task, job_id: str) -> None:
    store = runtime.store()
    record = store.get(job_id)
    if record is None or record.state != JobState.DOWNLOADING or record.stored_assets() != record.expected_assets():
        return
    try:
        manifest = write_manifest(runtime.storage(), record)
    except TransientError as exc:
        settings = runtime.settings()
        failures = self.request.retries + 1
        if failures > settings.max_transient_errors:
            end_job(job_id, JobState.FAILED, exc.code, f"manifest: gave up after {failures} attempts: {exc.message}",
                    expect={JobState.DOWNLOADING})
            return
        raise self.retry(countdown=backoff_delay(failures, settings.retry_base_delay, settings.retry_max_delay))
    except PermanentError as exc:
        end_job(job_id, JobState.FAILED, exc.code, f"manifest: {exc.message}", expect={JobState.DOWNLOADING})
        return
    done = store.apply(job_id, {JobState.DOWNLOADING}, mutate=lambda r: setattr(r, "manifest", manifest),
                       to=JobState.SUCCEEDED)
    if done is not None:
        log.info("job %s: SUCCEEDED, manifest at %s", job_id, manifest.uri)
        announce(app, done, TERMINAL_EVENTS[JobState.SUCCEEDED])
