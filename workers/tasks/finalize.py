"""Step 4: write the job's manifest.json and mark it SUCCEEDED."""

from __future__ import annotations

from producer import task_names
from producer.job_record import JobState
from workers import runtime
from workers.celery_app import app
from workers.manifest import write_manifest
from workers.tasks.common import log


@app.task(name=task_names.FINALIZE)
def finalize(job_id: str) -> None:
    store = runtime.store()
    record = store.get(job_id)
    if record is None or record.state != JobState.DOWNLOADING or record.stored_assets() != record.expected_assets():
        return
    manifest = write_manifest(runtime.storage(), record)
    done = store.apply(job_id, {JobState.DOWNLOADING}, mutate=lambda r: setattr(r, "manifest", manifest),
                       to=JobState.SUCCEEDED)
    if done is not None:
        log.info("job %s: SUCCEEDED, manifest at %s", job_id, manifest.uri)
