"""What a poll learnt, merged into the job record: progress, and the songs as the upstream
describes them until each is dispatched for download (after that, what was dispatched is
what gets downloaded)."""

from __future__ import annotations

from producer.core.models.job_record import JobRecord, SongRecord
from workers.providers.base import Outcome, UpstreamSong, UpstreamStatus


def merge_status(record: JobRecord, status: UpstreamStatus) -> None:
    """One fetch's answer into the record: progress, and songs not yet dispatched."""
    record.attempts["poll"] = record.attempts.get("poll", 0) + 1
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
