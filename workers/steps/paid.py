"""What a paid call returned, recorded and handed on: an asynchronous provider's task id
(`record_task`: SUBMITTING -> SUBMITTED, then the first poll) or a synchronous provider's
songs (`accept_songs`: SUBMITTING -> DOWNLOADING).

For synchronous providers:

Called by the submit task right after `SyncProvider.generate` answered, still under its
ledger (the intent was written before the call). Inline audio is staged in storage first,
then the job moves SUBMITTING -> DOWNLOADING with its songs, and the download step takes
every song through the same path as an asynchronous provider's: a URL is downloaded, a
staged object is read back, and both are checked, tagged and stored alike. Nothing here
calls the upstream again: the call was billed.

The answer is paid for, so it is kept like an asynchronous provider's task id
(workers/tasks/submit.py): logged before it is written, the write retried until Redis
takes it, and fenced by the token the intent was written under, so a slow original can
neither overwrite nor fail a submit the watchdog resent meanwhile.
"""

from __future__ import annotations

import time

from producer.core import deadlines, task_names
from producer.core.models.job_record import JobRecord, JobState, SongRecord
from workers import fault_points, poll_learning, runtime
from workers.artifacts import inline_audio
from workers.artifacts.manifest import staged_audio_key
from workers.providers import registry
from workers.providers.base import UpstreamSong
from workers.steps import ledger
from workers.steps.common import end_job, log, send
from workers.steps.ledger import until_written
from workers.upstream.errors import UpstreamError

# More songs than one answer ever holds (MiniMax answers one): the most a lookup stats.
_MAX_STAGED = 8


def accept_songs(job_id: str, songs: list[UpstreamSong], price: float, token: int, intent: str | None) -> None:
    """`token`: the fencing token this run's intent was written under; `intent`: its id,
    which the price is charged under, once (workers/steps/ledger.py)."""
    settings = runtime.settings()
    what = f"the {len(songs)} paid song(s) {', '.join(song.id for song in songs)}"

    if not songs:
        _charge_paid(job_id, intent, price, what)
        end_job(job_id, JobState.FAILED, "upstream_no_songs", "the upstream answered without any songs",
                expect={JobState.SUBMITTING}, token=token)
        return
    staged: dict[int, str] = {}
    try:
        for index, song in enumerate(songs):
            if song.audio_file is not None:
                staged[index] = inline_audio.stage_file(runtime.storage(), job_id, index, song.audio_file,
                                                        settings.max_download_bytes, intent)
            elif song.audio_bytes is not None:
                staged[index] = inline_audio.stage(runtime.storage(), job_id, index, song.audio_bytes,
                                                   settings.max_download_bytes, intent)
    except UpstreamError as exc:
        # Storage faults arrive as UpstreamErrors too. Retrying is no use either way: the
        # bytes live only in this run, and getting them again means paying again.
        _charge_paid(job_id, intent, price, what)
        end_job(job_id, JobState.FAILED, exc.code, f"the upstream's song could not be kept: {exc.message}",
                expect={JobState.SUBMITTING}, token=token)
        return
    finally:
        # Spool files of songs not reached (an earlier one failed) go too.
        for song in songs:
            if song.audio_file is not None:
                song.audio_file.path.unlink(missing_ok=True)

    log.warning("job %s: the upstream answered with %s (paid; staged as %s; recording them)", job_id, what,
                ", ".join(staged.values()) or "URLs", extra={"job_id": job_id})
    _record_songs(job_id, [_song_record(song, staged.get(index, "")) for index, song in enumerate(songs)],
                  price, token, intent, what)


def staged_answer(record: JobRecord) -> list[str]:
    """The keys of audio a run of this intent staged before it died unrecorded (in order)."""
    if record.submit_intent_id is None:
        return []
    storage = runtime.storage()
    found: list[str] = []
    for index in range(_MAX_STAGED):
        key = staged_audio_key(record.id, index, record.submit_intent_id)
        if storage.stat(key) is None:
            break
        found.append(key)
    return found


def accept_staged(record: JobRecord, keys: list[str], price: float) -> None:
    """Record the staged audio of a run that died between staging and recording as its call's
    answer: the call was paid and its songs are in hand, so the job goes on to DOWNLOADING
    instead of failing uncertain (titles and durations, only in the lost answer, stay empty;
    the download step verifies the audio from its own headers)."""
    what = f"the {len(keys)} song(s) staged at {', '.join(keys)} by a run that stopped before recording them"
    log.warning("job %s: %s: recording them as the paid answer", record.id, what, extra={"job_id": record.id})
    songs = [SongRecord(upstream_id=f"{record.submit_intent_id}-{index + 1}", finished=True, dispatched=True,
                        staged_audio_key=key) for index, key in enumerate(keys)]
    _record_songs(record.id, songs, price, record.token, record.submit_intent_id, what)


def _record_songs(job_id: str, songs: list[SongRecord], price: float, token: int, intent: str | None,
                  what: str) -> None:
    """Write the songs of the paid call (SUBMITTING -> DOWNLOADING, charged under `intent`),
    retried until Redis takes it, then send their downloads."""
    store = runtime.store()
    settings = runtime.settings()
    now = time.time()

    def record_songs(r: JobRecord) -> None:
        ledger.charge(r, intent, price)
        r.songs = songs
        r.submitted_at = now
        r.progress = 100

    def write() -> JobRecord | None:
        fault_points.hit("submit.after_call")  # logged, not yet written
        return store.apply(job_id, {JobState.SUBMITTING}, mutate=record_songs, to=JobState.DOWNLOADING,
                           token=token, check_in=settings.watchdog_grace)

    record = until_written(job_id, what, write)
    if record is None:
        # Cancelled, or resent by the watchdog, meanwhile: the call was paid all the same.
        _charge_paid(job_id, intent, price, what)
        log.warning("job %s: %s were paid but the job moved on before they were recorded", job_id, what,
                    extra={"job_id": job_id})
        return
    fault_points.hit("submit.after_record")
    log.info("job %s: %s generated %d song(s)", job_id, record.provider, len(record.songs))
    for index in range(len(record.songs)):
        send(task_names.DOWNLOAD, job_id, index, None, record.run, record=record)  # None: all the song's assets


def _charge_paid(job_id: str, intent: str | None, price: float, what: str) -> None:
    """Charge the paid call to the job in whatever state it is, once (under `intent`),
    retried until Redis takes it: `what` was paid for even when it cannot be kept."""
    def charge(r: JobRecord) -> None:
        ledger.charge(r, intent, price)

    until_written(job_id, f"the price of {what}", lambda: runtime.store().apply(job_id, set(JobState), mutate=charge))


def _song_record(song: UpstreamSong, staged_key: str) -> SongRecord:
    return SongRecord(
        upstream_id=song.id,
        title=song.title,
        duration=song.duration,
        lyrics=song.lyrics,
        tags=song.tags,
        song_path=song.song_path,
        image_path=song.image_path,
        finished=True,
        dispatched=True,  # sent right below; the watchdog resends what a crash lost
        staged_audio_key=staged_key,
    )


def charge_call(job_id: str, intent: str, price: float) -> None:
    """Charge the call made under `intent` (its answer was a fault after which it may be billed)."""
    def charge(r: JobRecord) -> None:
        ledger.charge(r, intent, price)

    runtime.store().apply(job_id, set(JobState), mutate=charge)


def record_task(record: JobRecord, task_id: str, price: float, intent: str | None) -> None:
    """SUBMITTING -> SUBMITTED with the upstream's task id, then the first poll.

    The id is paid for: it is logged before anything else, and its write is retried until
    Redis takes it. The write is fenced by the token this run's intent was written under,
    so a run the watchdog resent meanwhile is never overwritten by a slow original.
    `intent`: the intent the call was made under; its price is charged once, whichever
    write gets there first (this one, a retry of it, or the end of an uncertain submit).
    """
    store = runtime.store()
    settings = runtime.settings()
    job_id = record.id
    log.info("job %s: upstream accepted it as task %s (paid; recording it)", job_id, task_id,
             extra={"job_id": job_id, "upstream_task_id": task_id})
    now = time.time()
    first_poll = poll_learning.first_poll(settings, record.provider, record.model)

    def note(r: JobRecord) -> None:
        r.upstream_task_id = task_id
        r.waiting_for = None  # a submit reconciled from the notify hook waited for it
        r.submitted_at = now
        ledger.charge(r, intent, price)
        r.deadline_at = deadlines.first(now + registry.deadline_seconds(settings, r.provider), r.cancel_after)

    check_in = first_poll + settings.watchdog_grace

    def write() -> JobRecord | None:
        fault_points.hit("submit.after_call")  # logged, not yet written
        if settings.notify_hook_url:
            # The notify hook finds the job by the upstream's task id, kept as long as the upstream
            # may still call about it. Written before the record (another slot on Redis Cluster, so
            # not in the same step): a hook that comes as soon as the record names the task finds
            # it; one that comes before finds a record without it and is refused as unknown.
            store.index_upstream_task(record.provider, task_id, job_id,
                                      registry.deadline_seconds(settings, record.provider) + 3600)
        return store.apply(job_id, {JobState.SUBMITTING}, mutate=note, to=JobState.SUBMITTED, token=record.token,
                           check_in=check_in)

    written = until_written(job_id, f"upstream task {task_id}", write)
    if written is None:
        _keep_paid_task(job_id, task_id, price, intent)
        return
    fault_points.hit("submit.after_record")
    log.info("job %s: submitted as upstream task %s", job_id, task_id,
             extra={"job_id": job_id, "upstream_task_id": task_id})
    send(task_names.POLL, job_id, record.token, countdown=first_poll, record=record)


def _keep_paid_task(job_id: str, task_id: str, price: float, intent: str | None) -> None:
    """The job moved on while its paid call ran (cancelled, failed uncertain, or resent), or
    the write above landed but its answer was lost: the call is charged, unless that was
    done already (by the end of an uncertain submit, or by the write that did land), and
    the id kept when the record has none."""
    def keep(r: JobRecord) -> None:
        ledger.charge(r, intent, price)
        if r.upstream_task_id is None:
            r.upstream_task_id = task_id

    kept = until_written(job_id, f"upstream task {task_id}",
                         lambda: runtime.store().apply(job_id, set(JobState), mutate=keep))
    if kept is not None and kept.upstream_task_id != task_id:
        log.error("job %s: upstream task %s was paid but the job already runs as task %s",
                  job_id, task_id, kept.upstream_task_id, extra={"job_id": job_id, "upstream_task_id": task_id})
