"""Step 4: write the job's manifest.json and mark it SUCCEEDED."""

from __future__ import annotations

from celery import Task

from producer import task_names
from producer.client.archive import send_archive
from producer.client.callbacks import TERMINAL_EVENTS, announce
from producer.models.job_record import JobState
from workers import runtime
from workers.artifacts.manifest import write_manifest
from workers.celery_app import app
from workers.retry_policy import retry_or_give_up
from workers.tasks.common import end_job, log
from workers.upstream.errors import PermanentError, TransientError


@app.task(name=task_names.FINALIZE, bind=True, max_retries=None)
def finalize(self: Task, job_id: str, faults: int = 0) -> None:
    """`faults`: transient faults in a row so far, counted by workers.retry_policy."""
    store = runtime.store()
    record = store.get(job_id)
    if record is None or record.state != JobState.DOWNLOADING or record.stored_assets() != record.expected_assets():
        return
    try:
        manifest = write_manifest(runtime.storage(), record, JobState.SUCCEEDED)
    except TransientError as exc:
        code = exc.code

        def give_up(message: str) -> None:
            end_job(job_id, JobState.FAILED, code, f"manifest: {message}", expect={JobState.DOWNLOADING})

        retry_or_give_up(self, runtime.settings(), "finalize", exc.message, retry_after=exc.retry_after, give_up=give_up)
        return
    except PermanentError as exc:
        end_job(job_id, JobState.FAILED, exc.code, f"manifest: {exc.message}", expect={JobState.DOWNLOADING})
        return
    done = store.apply(job_id, {JobState.DOWNLOADING}, mutate=lambda r: setattr(r, "manifest", manifest),
                       to=JobState.SUCCEEDED)
    if done is not None:
        log.info("job %s: SUCCEEDED, manifest at %s", job_id, manifest.uri)
        announce(app, done, TERMINAL_EVENTS[JobState.SUCCEEDED])
    else:
        # Cancelled meanwhile: the manifest just written says SUCCEEDED; have it rewritten.
        send_archive(app, record)
