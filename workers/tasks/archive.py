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

from celery import Task

from producer.core import task_names
from producer.core.models.job_record import JobRecord
from producer.core.store import keys
from producer.core.store.playlist_store import PlaylistStore
from workers import runtime
from workers.artifacts.manifest import write_manifest
from workers.celery_app import app
from workers.retry_policy import retry_or_give_up
from workers.steps.common import log
from workers.upstream.errors import PermanentError, TransientError


@app.task(name=task_names.ARCHIVE, bind=True, max_retries=None)
def archive(self: Task, job_id: str, faults: int = 0) -> None:
    """`faults`: transient faults in a row so far, counted by workers.retry_policy."""
    store = runtime.store()
    record = store.get(job_id)
    if record is None or not record.state.terminal:
        return
    try:
        manifest = write_manifest(runtime.storage(), record)
    except TransientError as exc:
        def give_up(message: str) -> None:
            log.warning("job %s: no manifest for its %s: %s", job_id, record.state.value, message)

        retry_or_give_up(self, runtime.settings(), "archive", exc.message, retry_after=exc.retry_after, give_up=give_up)
        return
    except PermanentError as exc:
        log.warning("job %s: no manifest for its %s: %s", job_id, record.state.value, exc.message)
        return

    def note(r: JobRecord) -> None:
        r.manifest = manifest

    store.apply(job_id, {record.state}, mutate=note)


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
