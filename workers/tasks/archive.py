"""Retention's worker side: the manifest of a job that ended without succeeding, and the
periodic sweep of index entries whose records Redis has already expired.

- `songqueue.archive(job_id)`: sent when a job turns FAILED, TIMED_OUT or CANCELLED (and
  when a cancel beat finalize to the record). Writes manifest.json with the job's state
  and error, then notes it on the record. It always rewrites, so a redelivered message or
  a manifest finalize wrote just before a cancel ends with the state the record holds.
- `songqueue.retention_sweep()`: run by every worker's watchdog timer (workers/watchdog_timer.py);
  a Redis lease keeps it to one round per SONGQUEUE_RETENTION_SWEEP_INTERVAL across the fleet.
  Sorted-set members cannot expire, so it prunes the entries of jobs and playlist runs
  that ended more than their retention ago (producer/core/store/retention.py).
"""

from __future__ import annotations

import time

from producer.core import task_names
from producer.core.models.job_record import TERMINAL_STATES, JobRecord
from producer.core.store import keys
from producer.core.store.playlist_store import PlaylistStore
from workers import runtime
from workers.artifacts.manifest import write_manifest
from workers.celery_app import app
from workers.steps.common import log
from workers.steps.step import Run, step


def _no_manifest(job: Run, code: str, message: str, permanent: bool) -> None:
    """A fault past its bound, or a permanent one: the job has ended already; only logged."""
    log.warning("job %s: no manifest for its %s: %s", job.job_id, job.record.state.value, message)


@app.task(name=task_names.ARCHIVE, bind=True, max_retries=None)
@step("archive", expect=TERMINAL_STATES, end=_no_manifest)
def archive(job: Run, faults: int = 0) -> None:
    """`faults`: transient faults in a row so far, counted by workers.retry_policy."""
    manifest = write_manifest(runtime.storage(), job.record)

    def note(r: JobRecord) -> None:
        r.manifest = manifest

    runtime.store().apply(job.job_id, {job.record.state}, mutate=note)


@app.task(name=task_names.RETENTION_SWEEP)
def retention_sweep() -> int:
    """One round; returns how many index entries were pruned."""
    settings = runtime.settings()
    store = runtime.store()
    if not store.redis.set(keys.retention_sweep_lock(settings.key_prefix), "1", nx=True,
                           px=max(1, int(settings.retention_sweep_interval * 900))):
        return 0
    now = time.time()
    runs = PlaylistStore(store.redis, settings.key_prefix, settings.playlist_run_retention)
    pruned = store.prune_ended(now) + runs.prune_ended(now)
    if pruned:
        log.info("retention: pruned %d index entries of ended jobs and runs", pruned)
    return pruned
