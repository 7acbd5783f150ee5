"""Audio an upstream returned in its answer (MiniMax's hex) rather than at a URL.

The decoded bytes exist only in the submit task that received them (in memory, or in a
spool file when decoded as a stream), so it stages them in storage at once (`stage`,
`stage_file`). The download step then takes them from there
(`open_staged`, the counterpart of `downloader.open_download`) through the same checks,
tags and storage as a downloaded file, so both kinds of provider end alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain

from workers.artifacts.downloader import Body, sniff_audio
from workers.artifacts.manifest import staged_audio_key
from workers.providers.base import InlineAudio
from workers.storage import Storage
from workers.upstream.errors import PermanentError

_HEAD = 16
# Never the bytes themselves: an error quotes nothing fetched from elsewhere.
_NOT_MP3 = "the upstream's inline audio is not MP3 (it starts with neither an ID3 tag nor an MPEG frame)"


def stage(storage: Storage, job_id: str, song_index: int, data: bytes, max_bytes: int,
          intent: str | None = None) -> str:
    """Store the upstream's audio as it came; returns its key. Refused like a bad download."""
    if len(data) > max_bytes:
        raise PermanentError("download_too_large", f"the inline audio is {len(data)} bytes, over the cap of {max_bytes}")
    extension, content_type = sniff_audio(data[:_HEAD])
    if extension is None:
        raise PermanentError("download_not_audio", _NOT_MP3)
    key = staged_audio_key(job_id, song_index, intent)
    storage.put(key, [data], content_type)
    return key


def stage_file(storage: Storage, job_id: str, song_index: int, audio: InlineAudio, max_bytes: int,
               intent: str | None = None) -> str:
    """`stage` for audio already decoded into a spool file (streamed from disk); deletes the file."""
    try:
        if audio.size > max_bytes:
            raise PermanentError("download_too_large",
                                 f"the inline audio is {audio.size} bytes, over the cap of {max_bytes}")
        extension, content_type = sniff_audio(audio.head)
        if extension is None:
            raise PermanentError("download_not_audio", _NOT_MP3)
        key = staged_audio_key(job_id, song_index, intent)
        storage.put_file(key, audio.path, content_type, upstream_sha256=audio.sha256, sha256=audio.sha256)
        return key
    finally:
        audio.path.unlink(missing_ok=True)


@contextmanager
def open_staged(storage: Storage, key: str, *, max_bytes: int, chunk_bytes: int) -> Iterator[Body]:
    """The staged object at `key` as a body to read, like `downloader.open_download`'s: capped
    chunks whose first bytes were checked to be MP3; the stream closes when the block ends."""
    try:
        source = storage.open(key)
    except FileNotFoundError:
        raise PermanentError("download_failed", f"the staged inline audio {key} is missing") from None
    with source:
        chunks = _capped(iter(lambda: source.read(chunk_bytes), b""), max_bytes)
        first = next(chunks, b"")
        extension, content_type = sniff_audio(first[:_HEAD])
        if extension is None:
            raise PermanentError("download_not_audio", f"the staged inline audio {key} is not MP3")
        yield Body(extension, content_type, chain([first], chunks))


def _capped(chunks: Iterator[bytes], max_bytes: int) -> Iterator[bytes]:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise PermanentError("download_too_large", f"the inline audio exceeds the cap of {max_bytes} bytes")
        yield chunk
