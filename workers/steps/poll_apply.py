"""One fetch's answer applied to one job, under that job's fencing token.

The poll step applies its own job's answer here; a batch poll (workers/steps/poll_batch.py)
applies every other claimed job's answer here too, each under its own token, exactly as
if that job had been polled alone: deadline, FAILURE, progress, early downloads,
finalize, progress callbacks and the watchdog's next check-in.

What a poll learnt is merged into the record (`merge_status`): progress, and the songs as
the upstream describes them until each is dispatched for download (after that, what was
dispatched is what gets downloaded).
"""

from __future__ import annotations

import time

from producer.core import deadlines, task_names
from producer.core.callbacks import PROGRESS, announce, wants
from producer.core.models.job_record import WAITING_STATES, JobRecord, JobState, SongRecord
from workers import metrics, runtime
from workers.celery_app import app
from workers.poll_learning import finished, learned
from workers.poll_schedule import next_poll_delay, predicted_finish
from workers.providers.base import Outcome, UpstreamSong, UpstreamStatus
from workers.steps.common import end_job, log, send
from workers.steps.unknown_task import forget


def past_deadline(record: JobRecord) -> bool:
    """End the job TIMED_OUT when its deadline has passed; True if so."""
    if record.deadline_at is None or time.time() <= record.deadline_at:
        return False
    if record.cancel_after is not None and record.cancel_after <= record.deadline_at:
        code, message = deadlines.after_submit(record)  # the caller's deadline came first
    else:
        code, message = "upstream_deadline", (
            f"no terminal answer from {record.provider} within its deadline "
            f"({record.deadline_at - (record.submitted_at or record.created_at):.0f}s)")
    polling_ended(end_job(record.id, JobState.TIMED_OUT, code, message, expect=WAITING_STATES))
    return True


def apply_status(record: JobRecord, token: int, status: UpstreamStatus, once: bool = False) -> float | None:
    """Merge `status` into `record`'s job; the countdown to its next poll, or None when its
    polling is over (ended, or moved on under another token)."""
    settings = runtime.settings()
    job_id = record.id
    if status.outcome is Outcome.FAILED:
        reason = status.fail_reason or f"status {status.raw_status}"
        polling_ended(end_job(job_id, JobState.FAILED, "upstream_failure", f"the upstream reported FAILURE: {reason}",
                              expect=WAITING_STATES), uncounted=1)
        return None
    now = time.time()
    elapsed = now - (record.submitted_at or record.created_at)
    _, least, most = settings.poll_schedule(record.provider)
    countdown = next_poll_delay(elapsed, status.progress, status.raw_status, least, most,
                                learned(record.provider, record.model))
    done = status.outcome is Outcome.SUCCEEDED
    progress_before = record.progress
    marked: list[int] = []  # songs the write moving the job to DOWNLOADING marks dispatched

    def merge(r: JobRecord) -> None:
        merge_status(r, status, now)
        marked[:] = _mark_dispatched(r) if done else []

    written = runtime.store().apply(
        job_id, WAITING_STATES, mutate=merge,
        to=JobState.DOWNLOADING if done else JobState.GENERATING, token=token,
        # Once downloading, the download steps keep the watchdog's deadline fresh; a
        # one-shot poll leaves the deadline of the chain's next poll as it is.
        check_in=settings.watchdog_grace if done else (None if once else countdown + settings.watchdog_grace),
    )
    if written is None:
        return None
    if (written.progress != progress_before and wants(written, PROGRESS, settings.callback_progress)
            and runtime.store().progress_callback_due(job_id, settings.callback_progress_interval)):
        announce(app, written, PROGRESS)
    if done and not written.songs:
        end_job(job_id, JobState.FAILED, "upstream_no_songs", "the upstream reported SUCCESS without any songs",
                expect={JobState.DOWNLOADING})
        return None
    if not done:
        _dispatch_finished(job_id, written)
        return countdown
    _send_downloads(job_id, written, marked)
    finished(written, now, status.took)
    polling_ended(written)
    log.info("job %s: upstream task %s done after %d poll(s)", job_id, written.upstream_task_id,
             written.attempts.get("poll", 0),
             extra={"job_id": job_id, "upstream_task_id": written.upstream_task_id})
    if written.stored_assets() == written.expected_assets():
        send(task_names.FINALIZE, job_id, written.run, record=written)
    return None


def polling_ended(record: JobRecord | None, uncounted: int = 0) -> None:
    """Count the job's fetches once its polling is over (`uncounted`: the last one, when it
    was not merged into the record)."""
    if record is not None:
        metrics.polls_per_job(record.provider, record.attempts.get("poll", 0) + uncounted)


def _mark_dispatched(record: JobRecord) -> list[int]:
    """Mark the finished songs not yet sent as sent; their indexes."""
    ready = [i for i, s in enumerate(record.songs) if s.finished and not s.dispatched]
    for index in ready:
        record.songs[index].dispatched = True
    return ready


def _send_downloads(job_id: str, record: JobRecord, songs: list[int]) -> None:
    for index in songs:
        send(task_names.DOWNLOAD, job_id, index, None, record.run, record=record)  # None: all the song's assets


def _dispatch_finished(job_id: str, record: JobRecord) -> None:
    """While the job generates: send downloads for finished songs not yet sent, then mark
    them sent.

    Sent before marked: a crash in between sends them again (the poll's message comes
    back and finds them unmarked), which the download step absorbs (it skips an asset
    already stored). The write that moves the job to DOWNLOADING marks its songs itself,
    before the sends (one write fewer): a crash in between leaves a DOWNLOADING job, where
    a poll's message coming back does nothing either way, and the watchdog resends the
    downloads of every song still missing an asset.
    """
    ready = [i for i, s in enumerate(record.songs) if s.finished and not s.dispatched]
    if not ready:
        return
    _send_downloads(job_id, record, ready)

    def mark(r: JobRecord) -> None:
        for index in ready:
            r.songs[index].dispatched = True

    runtime.store().apply(job_id, {JobState.GENERATING, JobState.DOWNLOADING}, mutate=mark)


def merge_status(record: JobRecord, status: UpstreamStatus, now: float | None = None) -> None:
    """One fetch's answer into the record: progress, songs not yet dispatched, and (for the
    schedule's learning) when it was seen running and where its progress then pointed."""
    record.attempts["poll"] = record.attempts.get("poll", 0) + 1
    if now is not None and status.outcome is not Outcome.SUCCEEDED and record.submitted_at is not None:
        record.polled_at = now
        record.predicted_finish = predicted_finish(now, record.submitted_at, status.progress) or record.predicted_finish
    forget(record)  # answered: any unknown answers before were not in a row with a later one
    record.waiting_for = None
    record.progress = max(record.progress, status.progress)
    known = {s.upstream_id: s for s in record.songs}
    for song in status.songs:
        finished = song.finished or (status.outcome is Outcome.SUCCEEDED and bool(song.song_path))
        if song.id in known:
            _refresh(known[song.id], song, finished)
        else:
            record.songs.append(_new_song(song, finished))


def _new_song(song: UpstreamSong, finished: bool) -> SongRecord:
    new = SongRecord(upstream_id=song.id)
    _refresh(new, song, finished)
    return new


def _refresh(stored: SongRecord, song: UpstreamSong, finished: bool) -> None:
    if stored.dispatched:
        return  # what was dispatched is what gets downloaded
    stored.title = song.title
    stored.duration = song.duration
    stored.lyrics = song.lyrics
    stored.tags = song.tags
    stored.song_path = song.song_path
    stored.image_path = song.image_path
    stored.finished = finished
