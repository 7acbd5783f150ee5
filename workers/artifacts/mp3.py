"""A song's MP3: its ID3v2.4 tags (`SongTags`, `tag_bytes`), the file written tagged in one pass
over its bytes with both checksums (`write_tagged_mp3`), and the check that it is MPEG audio
of the length the upstream gave (`check_mp3`).

The stored file is our ID3v2.4 tag followed by the upstream's audio: the bytes as served
less the upstream's own ID3v2 tag at the start (its frames are merged into ours) and less
an ID3v1 tag at the end (its Latin-1 fields cannot hold CJK text and would disagree with
ours; its fields are not carried over). The tag depends only on the song's metadata, the
cover and the upstream's ID3v2 tag, which comes first in the stream, so it is rendered
and written before the first audio byte. Then each chunk is written once and hashed
twice: `upstream_sha256` over the bytes as served, `sha256` over the bytes stored (the
tag, then the audio). The last 133 bytes are held back from `sha256` until the end shows
whether they are an ID3v1 tag to cut off the file. Past the first few MiB the digest of
the bytes as served is computed on a helper thread (`_HelperSha256`).
"""

from __future__ import annotations

import hashlib
import io
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mutagen import MutagenError
from mutagen.id3 import APIC, ID3, TALB, TCON, TIT2, TPE1, TRCK, TXXX, USLT, PictureType
from mutagen.mp3 import MPEGInfo

from workers.artifacts.downloader import EVERY_BYTES, start_writeback
from workers.upstream.errors import PermanentError

ID3V1_BYTES = 128
# An ID3v1 tag is the last 128 bytes starting "TAG"; the 5 bytes before them tell it apart
# from the "TAG" inside an APEv2 footer ("APETAGEX"), which is kept.
HOLD_BACK = ID3V1_BYTES + 5
ID3V2_HEADER = 10
# The upstream's ID3v2 tag is parsed in memory; a tag larger than this (a song's tag holds
# text and a cover art of a few MiB at most) is refused rather than held.
MAX_UPSTREAM_TAG = 16 * 1024 * 1024
# Bytes as served hashed inline before the helper thread takes over: a thread's start (about
# 0.1 ms) costs more than hashing a small file (a 1 s song of 16 KiB) would, less than a MiB.
THREAD_AFTER_BYTES = 1024 * 1024
# Chunks waiting for the helper thread at most (each one download chunk, 1 MiB by default):
# a starved helper slows the download down instead of growing its memory.
THREAD_QUEUE_CHUNKS = 4


@dataclass(frozen=True)
class TaggedMp3:
    size: int  # bytes stored: our tag and the audio
    sha256: str  # of those bytes
    upstream_size: int
    upstream_sha256: str  # of the bytes as served


def write_tagged_mp3(chunks: Iterable[bytes], out: BinaryIO, tags: SongTags) -> TaggedMp3:
    """Write `tags` and the audio of the upstream's `chunks` to `out` (at its start)."""
    served = iter(chunks)
    upstream_tag, rest = _split_upstream_tag(served)
    try:
        tag = tag_bytes(upstream_tag, tags)
    except MutagenError as exc:
        raise PermanentError("download_not_audio", f"the MP3's ID3 tag does not parse: {exc}") from exc
    stored = hashlib.sha256(tag)
    out.write(tag)
    held = _HeldBack(stored)
    upstream = _HelperSha256(upstream_tag)
    try:
        audio = _write_audio(rest, served, out, held, upstream, len(tag))
        cut = held.finish(out)
        return TaggedMp3(len(tag) + audio - cut, stored.hexdigest(), len(upstream_tag) + audio, upstream.hexdigest())
    finally:
        upstream.stop()


def _write_audio(first: bytes, served: Iterator[bytes], out: BinaryIO, held: _HeldBack,
                 upstream: _HelperSha256, offset: int) -> int:
    """Write the audio at `offset`; returns its length. Each chunk is hashed into both
    digests while it is in memory anyway. The disk gets the bytes as they come
    (workers.artifacts.downloader start_writeback), not all at the fsync."""
    written = 0
    flushed = 0
    for chunk in _prepend(first, served):
        upstream.update(chunk)
        out.write(chunk)
        held.update(chunk)
        written += len(chunk)
        if written - flushed >= EVERY_BYTES:
            start_writeback(out, offset + flushed, offset + written)
            flushed = written
    return written


class _HelperSha256:
    """A sha256 computed on a helper thread of its own once THREAD_AFTER_BYTES have come:
    the bytes as served, while this thread writes them and hashes what is stored.

    The two digests are most of a long song's CPU (two sha256 passes over 50 MiB are about
    70 ms on the benchmark machine, the rest of the download about half that). hashlib lets
    go of the GIL while it hashes a large chunk, so one digest runs on the other core.
    Chunks are immutable `bytes` handed over in order, so the digest is the same as inline.
    Only one: with both digests on helpers, three busy threads and the server on two cores
    measured slower than one (500 against 560 MiB/s on 50 MiB songs).
    """

    def __init__(self, first: bytes) -> None:
        self._digest = hashlib.sha256(first)
        self._inline = len(first)
        self._chunks: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None

    def update(self, chunk: bytes) -> None:
        if self._chunks is not None:
            self._chunks.put(chunk)
            return
        self._digest.update(chunk)
        self._inline += len(chunk)
        if self._inline >= THREAD_AFTER_BYTES:
            self._chunks = queue.Queue(THREAD_QUEUE_CHUNKS)
            self._thread = threading.Thread(target=self._hash_queued, name="songqueue-served-sha256", daemon=True)
            self._thread.start()

    def _hash_queued(self) -> None:
        assert self._chunks is not None
        while (chunk := self._chunks.get()) is not None:
            self._digest.update(chunk)

    def hexdigest(self) -> str:
        self.stop()
        return self._digest.hexdigest()

    def stop(self) -> None:
        """Wait for the helper to hash what it was given and end (also when the download failed)."""
        if self._thread is not None and self._chunks is not None:
            self._chunks.put(None)
            self._thread.join()
            self._thread = None


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _split_upstream_tag(served: Iterator[bytes]) -> tuple[bytes, bytes]:
    """(the upstream's ID3v2 tag, or b"" without one; the bytes read past it). Without a
    tag the first chunk comes back as it is, not copied (it is a whole MiB)."""
    head = b""
    for chunk in served:
        head = head + chunk if head else chunk
        if len(head) >= ID3V2_HEADER or not head.startswith(b"ID3"[: len(head)]):
            break
    if not head.startswith(b"ID3"):
        return b"", head
    length = _id3v2_length(head[:ID3V2_HEADER])
    parts, have = [head], len(head)
    while have < length:
        more = next(served, None)
        if more is None:
            raise PermanentError("download_not_audio", "the MP3 ends inside its ID3 tag")
        parts.append(more)
        have += len(more)
    whole = b"".join(parts)
    return whole[:length], whole[length:]


def _id3v2_length(header: bytes) -> int:
    """The whole tag's length from its 10-byte header (ID3v2.4's footer included)."""
    size = header[6:10]
    if len(header) < ID3V2_HEADER or header[3] not in (2, 3, 4) or any(b & 0x80 for b in size):
        raise PermanentError("download_not_audio", "the MP3 starts with a malformed ID3 tag header")
    length = ID3V2_HEADER + (size[0] << 21 | size[1] << 14 | size[2] << 7 | size[3])
    if header[3] == 4 and header[5] & 0x10:
        length += ID3V2_HEADER
    if length > MAX_UPSTREAM_TAG:
        raise PermanentError("download_too_large", f"the MP3's ID3 tag is {length} bytes, over the "
                             f"{MAX_UPSTREAM_TAG // (1024 * 1024)} MiB songqueue reads")
    return length


class _HeldBack:
    """A digest fed all but the last HOLD_BACK bytes until `finish` decides about them."""

    def __init__(self, digest: hashlib._Hash) -> None:
        self._digest = digest
        self._tail = b""

    def update(self, chunk: bytes) -> None:
        if len(chunk) >= HOLD_BACK:
            self._digest.update(self._tail)
            self._digest.update(memoryview(chunk)[:-HOLD_BACK])
            self._tail = chunk[-HOLD_BACK:]
        else:
            joined = self._tail + chunk
            self._digest.update(joined[:-HOLD_BACK])
            self._tail = joined[-HOLD_BACK:]

    def finish(self, out: BinaryIO) -> int:
        """Hash the held bytes, or cut an ID3v1 tag off `out`; returns the bytes cut."""
        tail = self._tail
        cut = 0
        if len(tail) >= ID3V1_BYTES and tail[-ID3V1_BYTES:].startswith(b"TAG") and \
                tail[-HOLD_BACK:-ID3V1_BYTES + 3] != b"APETAGEX":
            cut = ID3V1_BYTES
            out.truncate(out.tell() - cut)
        self._digest.update(tail[: len(tail) - cut])
        return cut


# ------------------------------------------------------------------------------------------
# ID3v2.4 tags of a stored MP3, rendered with mutagen as bytes to write before the audio.
#
# Text frames are UTF-8 (ID3v2.4 encoding 3), so CJK titles and lyrics survive intact.
# Frames we own are replaced, others the upstream's own ID3v2 tag carried are kept.

UTF8 = 3
# ISO 639-2 "undetermined": the upstream does not say which language its lyrics are in.
LYRICS_LANGUAGE = "und"
TXXX_JOB_ID = "songqueue job id"
TXXX_UPSTREAM_SONG_ID = "upstream song id"
TXXX_UPSTREAM_TASK_ID = "upstream task id"
# Room left in the tag for a later editor to retag in place. At least 133 zero bytes also
# matters to the rendering: mutagen looks for an ID3v1 tag in the last 133 bytes of the
# buffer it saves into, and must find none in our own frames.
PADDING = 1024


@dataclass(frozen=True)
class Cover:
    data: bytes
    mime: str


@dataclass(frozen=True)
class SongTags:
    title: str
    artist: str
    album: str
    track: int
    track_total: int
    job_id: str
    upstream_song_id: str
    upstream_task_id: str | None = None
    lyrics: str = ""
    genres: list[str] = field(default_factory=list)
    cover: Cover | None = None


def tag_bytes(upstream_tag: bytes, tags: SongTags) -> bytes:
    """The complete ID3v2.4 tag (header, frames, padding) for `tags`, merged into the
    upstream's own ID3v2 tag (`upstream_tag`, its bytes as served; empty when it had none).

    Raises mutagen's errors when `upstream_tag` does not parse.
    """
    id3 = ID3(io.BytesIO(upstream_tag)) if upstream_tag else ID3()
    id3.setall("TIT2", [TIT2(encoding=UTF8, text=tags.title)])
    id3.setall("TPE1", [TPE1(encoding=UTF8, text=tags.artist)])
    id3.setall("TALB", [TALB(encoding=UTF8, text=tags.album)])
    id3.setall("TRCK", [TRCK(encoding=UTF8, text=f"{tags.track}/{tags.track_total}")])
    id3.delall("USLT")
    if tags.lyrics:
        id3.add(USLT(encoding=UTF8, lang=LYRICS_LANGUAGE, desc="", text=tags.lyrics))
    id3.delall("TCON")
    if tags.genres:
        id3.add(TCON(encoding=UTF8, text=list(tags.genres)))  # ID3v2.4 keeps each value apart
    id3.delall("APIC")
    if tags.cover is not None:
        id3.add(APIC(encoding=UTF8, mime=tags.cover.mime, type=PictureType.COVER_FRONT, desc="cover",
                     data=tags.cover.data))
    for desc, value in ((TXXX_JOB_ID, tags.job_id), (TXXX_UPSTREAM_SONG_ID, tags.upstream_song_id),
                        (TXXX_UPSTREAM_TASK_ID, tags.upstream_task_id)):
        id3.delall(f"TXXX:{desc}")
        if value:
            id3.add(TXXX(encoding=UTF8, desc=desc, text=value))
    rendered = io.BytesIO()
    id3.save(rendered, v2_version=4, v1=0, padding=lambda info: PADDING)
    return rendered.getvalue()


# ------------------------------------------------------------------------------------------
# Is a downloaded file the song the upstream described? MPEG audio of about that length.
#
# Result URLs of this family break into placeholders, error pages and truncated files
# (docs/upstream-contract.md, "What shapes the design"); the first bytes looking like MP3 is not enough, so the
# file is parsed with mutagen before it may be stored. mutagen reads headers, not the audio:
# the ID3 tag's header (to skip the tag), then the first MPEG frames' (sync, bitrate, sample rate, a Xing/VBRI/LAME
# frame count when there is one), and takes the length from that count or, for constant
# bitrate, from the file's size; a few hundred bytes of a 50 MiB file. A truncated body
# never gets here: the download checks its length against Content-Length.

def check_mp3(path: Path, expected_duration: float | None, tolerance: float) -> float:
    """Return the file's length in seconds, or raise PermanentError saying what is wrong.

    `download_not_audio`: no MPEG audio stream in it. `duration_mismatch`: it plays
    more than `tolerance` seconds longer or shorter than `expected_duration` (not
    checked when the upstream gave none).
    """
    try:
        # The stream's headers only: the ID3 tag in front is skipped by its header's size,
        # not parsed (it is our own, rendered by tag_bytes; parsing its frames and cover
        # again was most of this check's cost).
        with open(path, "rb") as stream:
            length = float(MPEGInfo(stream).length)
    except MutagenError as exc:
        raise PermanentError("download_not_audio", f"the audio file does not parse as MPEG audio: {exc}") from exc
    if length <= 0:
        raise PermanentError("download_not_audio", "the audio file holds no playable MPEG frames")
    if expected_duration is not None and abs(length - expected_duration) > tolerance:
        raise PermanentError(
            "duration_mismatch",
            f"the MP3 plays {length:.2f}s but the upstream reported {expected_duration:.2f}s "
            f"(tolerance {tolerance:g}s: SONGQUEUE_DURATION_TOLERANCE)",
        )
    return length
