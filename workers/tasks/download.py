"""Step 3: one task per song (its MP3 and its cover), streamed into storage; the run that
stores the job's last object also finalizes it.

The MP3 is verified and tagged on the way (workers.artifacts.assets); a wrong file fails the job
with `download_not_audio` or `duration_mismatch`. The cover goes first, so the MP3's ID3
frame takes it from storage instead of fetching it a second time.

One run per song, not per asset, and no separate finalize run on the way to SUCCEEDED:
most of a task run's cost is the run itself (Celery's handling, the next step's send, the
store's read and compare-and-set), so a 2-song job takes 2 download runs instead of 4
asset runs and a finalize (docs/benchmarks.md, "Fewer task runs per job"). Each asset
keeps its own bound (`download:<song>:<asset>` in the record's attempts). A message with
an `asset` (sent before this change, or by hand) fetches that asset alone.

An asset already on the record, or already in storage under its key, is not fetched
again. The run whose write stores the last asset of a finished job finalizes it in the
same run (workers/steps/finalize.py); the separate finalize task stays for the watchdog's
recovery and for a finalize's transient fault.

Every download and finalize message carries the job's run (`JobRecord.run`: one more per
replay). A message of a run that `songqueue retry` replaced (redelivered late, or a
retry's countdown that outlived its run) is dropped unread, and every write of the step
is fenced by the run, so an old run can neither fetch onto nor write over the new run's
songs. Not the fencing token: the watchdog bumps that while a job generates, and the
early downloads of its finished songs are still the same run's.
"""

from __future__ import annotations

from typing import Any

from producer.core import task_names
from producer.core.models.job_record import TERMINAL_STATES, JobRecord, JobState, StoredObject
from workers import fault_points, metrics, runtime
from workers.artifacts.assets import store_asset
from workers.artifacts.downloader import HEARTBEAT_SECONDS
from workers.artifacts.manifest import audio_key
from workers.celery_app import app
from workers.steps import finalize, step_runs
from workers.steps.common import log
from workers.steps.step import Run, step
from workers.upstream.errors import TransientError, UpstreamError

ACTIVE = frozenset({JobState.GENERATING, JobState.DOWNLOADING})
# The cover before the MP3: the MP3's tag embeds it (workers.artifacts.assets.cover_for_tags).
ORDER = ("cover", "audio")


def _label(args: dict[str, Any]) -> str:
    return f"song {args['song_index'] + 1}" + (f" {args['asset']}" if args["asset"] else "")


@app.task(name=task_names.DOWNLOAD, bind=True, max_retries=None)
@step("download", expect=ACTIVE, fence="run", label=_label)
def download(job: Run, song_index: int, asset: str | None = None, run: int = 0, faults: int = 0) -> None:
    """`asset`: "audio" or "cover", or None for all of the song's; `run`: the job's run the
    message belongs to; `faults`: transient faults in a row so far, counted by
    workers.retry_policy."""
    settings = runtime.settings()
    record, job_id = job.record, job.job_id
    if song_index >= len(record.songs):
        return
    song = record.songs[song_index]
    wanted = song.assets() if asset is None else (asset,)
    missing = tuple(a for a in ORDER if a in wanted and getattr(song, a) is None)
    if not missing:
        _finalize_if_complete(record)
        return
    # Counted before the work: a download that kills its worker every time is re-queued
    # by reject-on-worker-lost forever unless something counts the deliveries.
    runs_keys = {a: f"download:{song_index + 1}:{a}" for a in missing}
    written = step_runs.begin(job_id, tuple(runs_keys.values()), ACTIVE, check_in=settings.watchdog_grace,
                              run=run)
    if written is None:
        return
    for each in missing:
        spent = step_runs.spent(written, runs_keys[each], settings, "download", f"song {song_index + 1} {each}")
        if spent is not None:
            job.end_job(spent.code, spent.message)
            return
    stored: dict[str, StoredObject] = {}
    current = missing[0]
    try:
        for current in missing:
            job.where = f"song {song_index + 1} {current}: "
            stored[current] = _fetch(written, song_index, current)
            # On this run's copy too: the MP3's tag reads the cover just stored.
            setattr(written.songs[song_index], current, stored[current])
    except UpstreamError as exc:
        _keep(job_id, song_index, stored, run)  # what this run stored before the fault stays stored
        if isinstance(exc, TransientError):
            log.info("job %s: song %d %s: %s", job_id, song_index + 1, current, exc.message)
            step_runs.fault(job_id, runs_keys[current], ACTIVE, run)
        raise  # the one retry policy, or the job's end (workers/steps/step.py)
    kept = _keep(job_id, song_index, stored, run)
    if kept is not None and finalize.ready(kept):
        # This write stored the job's last object, and counted the finalize run with it.
        finalize.finalize_ready(kept, run, task=None, counted=True)


def _fetch(record: JobRecord, song_index: int, asset: str) -> StoredObject:
    """Store one asset (or take the MP3 a run that died before recording it stored)."""
    store = runtime.store()
    settings = runtime.settings()
    storage = runtime.storage()
    job_id = record.id
    # An MP3 stored by a run that died before recording it is complete (stored only
    # after its checks), so it is taken as it is.
    stored = storage.stat(audio_key(job_id, song_index)) if asset == "audio" else None
    if stored is not None and record.history and (stored.stored_at or 0) < (record.submitted_at or 0):
        stored = None  # a song of an earlier run of this replayed job (`songqueue retry`)
    if stored is None:
        fault_points.hit("download.before_put")
        # Each beat is a lease until the next one is due (HEARTBEAT_SECONDS, once bytes come)
        # plus the grace: leased for the grace alone, a beat a few seconds late on a loaded
        # machine let the watchdog resend a download that was still arriving.
        lease = HEARTBEAT_SECONDS + settings.watchdog_grace
        stored = store_asset(storage, settings, record, song_index, asset,
                             heartbeat=lambda: store.check_in(job_id, lease))
        fault_points.hit("download.after_put")
        metrics.downloaded(record.provider, asset, stored.size)
    return stored


def _keep(job_id: str, song_index: int, stored: dict[str, StoredObject], run: int) -> JobRecord | None:
    """Put what was stored on the record (one write for the song); the record as written,
    or None when the job ended meanwhile or nothing was stored."""
    if not stored:
        return None
    store = runtime.store()

    def keep(r: JobRecord) -> None:
        for asset, obj in stored.items():
            setattr(r.songs[song_index], asset, obj)

    def keep_and_count(r: JobRecord) -> None:
        keep(r)
        if finalize.ready(r):
            finalize.count_run(r)  # finalized right after, in this run (saves a read and a write)

    record = store.apply(job_id, ACTIVE, mutate=keep_and_count, check_in=runtime.settings().watchdog_grace, run=run)
    if record is None:
        # The job ended meanwhile (a sibling asset failed it): the objects are in storage all
        # the same, so their sha256 goes on the record rather than leave an unaccounted file.
        store.apply(job_id, TERMINAL_STATES, mutate=keep, run=run)
    return record


def _finalize_if_complete(record: JobRecord) -> None:
    if finalize.ready(record):
        finalize.finalize_ready(record, record.run, task=None)
