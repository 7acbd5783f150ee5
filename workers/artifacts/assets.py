"""A song's two finished artifacts: the verified, tagged MP3 and its cover.

The MP3 is written tagged (workers.artifacts.mp3) to a spool file as it downloads,
checked (workers.artifacts.mp3 check_mp3) and only then stored, so no untagged or unverified
audio is ever visible. The download run stores a song's cover first, so the MP3's APIC frame
takes it from storage; only a message for the audio alone (the older per-asset shape) or a
cover stored by no one yet makes it fetch the (small, capped) image itself.
"""

from __future__ import annotations

from collections.abc import Callable

from producer.core.models.job_record import JobRecord, StoredObject
from producer.core.settings import Settings
from producer.core.url_guard import download_policy
from workers.artifacts.downloader import download_to_file, download_to_storage, open_download, spool_path
from workers.artifacts.inline_audio import open_staged
from workers.artifacts.manifest import audio_key, cover_key
from workers.artifacts.mp3 import Cover, SongTags, check_mp3, write_tagged_mp3
from workers.storage import Storage
from workers.upstream.errors import PermanentError

Heartbeat = Callable[[], None] | None


def store_asset(
    storage: Storage, settings: Settings, record: JobRecord, song_index: int,
    asset: str, heartbeat: Heartbeat = None,
) -> StoredObject:
    if asset == "audio":
        return store_audio(storage, settings, record, song_index, heartbeat)
    return store_cover(storage, settings, record, song_index, heartbeat)


def store_cover(
    storage: Storage, settings: Settings, record: JobRecord, song_index: int,
    heartbeat: Heartbeat = None,
) -> StoredObject:
    return download_to_storage(
        record.songs[song_index].image_path, storage, kind="image",
        key_for=lambda ext: cover_key(record.id, song_index, ext),
        max_bytes=settings.max_cover_bytes, timeout=settings.http_timeout, chunk_bytes=settings.download_chunk_bytes,
        spool_dir=settings.spool_dir, heartbeat=heartbeat,
        policy=download_policy(settings), deadline=settings.download_deadline,
    )


def store_audio(
    storage: Storage, settings: Settings, record: JobRecord, song_index: int,
    heartbeat: Heartbeat = None,
) -> StoredObject:
    """One pass over the audio: the body (checked to start as MP3) is written behind its
    tag into a spool file, hashed on the way (workers.artifacts.mp3); the frame
    headers are verified, then storage takes the file with the sha256 already known."""
    song = record.songs[song_index]
    # Audio an upstream returned inline (MiniMax's hex) was staged by the submit step:
    # read back from storage instead of downloaded, then checked and tagged alike.
    source = open_staged(
        storage, song.staged_audio_key, max_bytes=settings.max_download_bytes, chunk_bytes=settings.download_chunk_bytes,
    ) if song.staged_audio_key else open_download(
        song.song_path, kind="audio", max_bytes=settings.max_download_bytes, timeout=settings.http_timeout,
        chunk_bytes=settings.download_chunk_bytes, heartbeat=heartbeat, policy=download_policy(settings),
        deadline=settings.download_deadline,
    )
    with source as body:
        # The tag goes before the audio, so the cover is needed first; a body that is not
        # MP3 at all was refused above, before any cover was fetched.
        tags = song_tags(record, song_index, settings, cover_for_tags(storage, settings, record, song_index))
        with spool_path(settings.spool_dir, "audio") as path:
            with open(path, "wb") as out:
                written = write_tagged_mp3(body.chunks, out, tags)
            check_mp3(path, song.duration, settings.duration_tolerance)
            return storage.put_file(audio_key(record.id, song_index), path, body.content_type,
                                    upstream_sha256=written.upstream_sha256, sha256=written.sha256)


def song_tags(record: JobRecord, song_index: int, settings: Settings, cover: Cover | None) -> SongTags:
    song = record.songs[song_index]
    return SongTags(
        title=song.title or f"Song {song_index + 1}",
        artist=settings.tag_artist or f"songqueue ({record.provider} {record.model})",
        album=record.album or f"songqueue job {record.id}",
        track=song_index + 1,
        track_total=len(record.songs),
        job_id=record.id,
        upstream_song_id=song.upstream_id,
        upstream_task_id=record.upstream_task_id,
        lyrics=song.lyrics,
        genres=list(song.tags),
        cover=cover,
    )


def cover_for_tags(
    storage: Storage, settings: Settings, record: JobRecord, song_index: int
) -> Cover | None:
    """The cover to embed: from storage if already there, else fetched; None without one."""
    song = record.songs[song_index]
    cap = settings.max_cover_bytes
    if song.cover is not None:
        with storage.open(song.cover.key) as stored:
            data = stored.read(cap + 1)
        if len(data) > cap:
            raise PermanentError("download_too_large", f"the stored cover exceeds the cap of {cap} bytes")
        return Cover(data, song.cover.content_type)
    if not song.image_path:
        return None  # nothing to embed; the cover task reports a missing cover
    with download_to_file(song.image_path, kind="image", max_bytes=cap, timeout=settings.http_timeout,
                          chunk_bytes=settings.download_chunk_bytes, spool_dir=settings.spool_dir,
                          policy=download_policy(settings), deadline=settings.download_deadline) as image:
        return Cover(image.path.read_bytes(), image.content_type)
