"""Step 3: one task per asset (a song's MP3 or its cover), streamed into storage.

The MP3 is verified and tagged on the way (workers.artifacts.assets); a wrong file fails the job
with `download_not_audio` or `duration_mismatch`.

An asset already on the record, or already in storage under its key, is not fetched
again. The run that stores the last asset of a finished job sends finalize.

Every download and finalize message carries the job's run (`JobRecord.run`: one more per
replay). A message of a run that `songqueue retry` replaced (redelivered late, or a
retry's countdown that outlived its run) is dropped unread, and every write of the step
is fenced by the run, so an old run can neither fetch onto nor write over the new run's
songs. Not the fencing token: the watchdog bumps that while a job generates, and the
early downloads of its finished songs are still the same run's.
"""

from __future__ import annotations

from celery import Task

from producer import task_names
from producer.models.job_record import JobRecord, JobState
from workers import fault_points, metrics, runtime
from workers.artifacts import storage_keys
from workers.artifacts.assets import store_asset
from workers.celery_app import app
from workers.retry_policy import retry_or_give_up
from workers.steps import step_runs
from workers.steps.common import end_job, log, send
from workers.upstream.errors import PermanentError, TransientError

ACTIVE = frozenset({JobState.GENERATING, JobState.DOWNLOADING})


@app.task(name=task_names.DOWNLOAD, bind=True, max_retries=None)
def download(self: Task, job_id: str, song_index: int, asset: str, run: int = 0, faults: int = 0) -> None:
    """`run`: the job's run the message belongs to; `faults`: transient faults in a row so
    far, counted by workers.retry_policy."""
    store = runtime.store()
    settings = runtime.settings()
    record = store.get(job_id)
    if record is None or record.state not in ACTIVE or song_index >= len(record.songs):
        return
    if record.run != run:
        log.warning("job %s: dropped a download (song %d %s) of run %d: the job is on run %d", job_id,
                    song_index + 1, asset, run, record.run, extra={"job_id": job_id})
        return
    song = record.songs[song_index]
    if getattr(song, asset) is not None:
        _maybe_finalize(record)
        return
    # Counted before the work: a download that kills its worker every time is re-queued
    # by reject-on-worker-lost forever unless something counts the deliveries.
    runs_key = f"download:{song_index + 1}:{asset}"
    record = step_runs.begin(job_id, runs_key, ACTIVE, check_in=settings.watchdog_grace, run=run)
    if record is None:
        return
    spent = step_runs.spent(record, runs_key, settings, "download", f"song {song_index + 1} {asset}")
    if spent is not None:
        end_job(job_id, JobState.FAILED, spent.code, spent.message, expect=ACTIVE, run=run)
        return
    storage = runtime.storage()
    try:
        # An MP3 stored by a run that died before recording it is complete (stored only
        # after its checks), so it is taken as it is.
        stored = storage.stat(storage_keys.audio_key(job_id, song_index)) if asset == "audio" else None
        if stored is not None and record.history and (stored.stored_at or 0) < (record.submitted_at or 0):
            stored = None  # a song of an earlier run of this replayed job (`songqueue retry`)
        if stored is None:
            fault_points.hit("download.before_put")
            stored = store_asset(storage, settings, record, song_index, asset,
                                 heartbeat=lambda: store.check_in(job_id, settings.watchdog_grace))
            fault_points.hit("download.after_put")
            metrics.downloaded(record.provider, asset, stored.size)
    except TransientError as exc:
        log.info("job %s: song %d %s: %s", job_id, song_index + 1, asset, exc.message)
        step_runs.fault(job_id, runs_key, ACTIVE, run)
        code = exc.code

        def give_up(message: str) -> None:
            end_job(job_id, JobState.FAILED, code, f"song {song_index + 1} {asset}: {message}", expect=ACTIVE,
                    run=run)

        retry_or_give_up(self, settings, "download", exc.message, retry_after=exc.retry_after, give_up=give_up)
        return
    except PermanentError as exc:
        end_job(job_id, JobState.FAILED, exc.code, f"song {song_index + 1} {asset}: {exc.message}", expect=ACTIVE,
                run=run)
        return
    record = store.apply(job_id, ACTIVE, mutate=lambda r: setattr(r.songs[song_index], asset, stored),
                         check_in=settings.watchdog_grace, run=run)
    if record is not None:
        _maybe_finalize(record)


def _maybe_finalize(record: JobRecord) -> None:
    if record.state == JobState.DOWNLOADING and record.stored_assets() == record.expected_assets():
        send(task_names.FINALIZE, record.id, record.run, record=record)
