"""Stream one asset from a result URL to a spool file, then into storage: capped, checked,
never half-visible.

Beside the download, what it needs: what the first bytes say the media is (`sniff_audio`,
`sniff_image`), the spool files a download is written to (`spool_path`), and the writeback
hint that starts a spool file to disk while the rest still arrives (`start_writeback`).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import BinaryIO

import requests
import urllib3

from producer.core.models.job_record import StoredObject
from producer.core.url_guard import CheckedUrl, UrlPolicy, UrlRefused
from workers.storage import Storage
from workers.upstream.cutoff import Cutoff
from workers.upstream.errors import PermanentError, TransientError
from workers.upstream.pinned_http import pinned_request

HEARTBEAT_SECONDS = 5.0
# A download's own deadline when none is given (SONGQUEUE_DOWNLOAD_DEADLINE's default).
DEFAULT_DEADLINE = 300.0
MAX_REDIRECTS = 5
# The guard's codes, as a download failure names them.
_CODES = {"url_host_not_allowed": "download_host_not_allowed", "url_private_address": "download_private_address"}


def check_url(url: str, policy: UrlPolicy, kind: str = "result") -> CheckedUrl:
    """The URL checked by the one outbound guard, resolved and ready to pin; PermanentError if refused."""
    try:
        return policy.check(url)
    except UrlRefused as exc:
        raise PermanentError(_CODES.get(exc.code, "download_bad_url"),
                             f"refusing to download the {kind} file: {exc.rule}") from None


@dataclass(frozen=True)
class Body:
    """A response body whose first bytes are of the kind asked for: capped chunks, as served."""

    extension: str
    content_type: str
    chunks: Iterator[bytes]


@dataclass(frozen=True)
class Downloaded:
    """A complete download in the spool: the upstream's bytes, as served."""

    path: Path
    size: int
    sha256: str
    extension: str
    content_type: str


@contextmanager
def open_download(
    url: str,
    *,
    kind: str,
    max_bytes: int,
    timeout: float,
    chunk_bytes: int,
    heartbeat: Callable[[], None] | None = None,
    policy: UrlPolicy,
    deadline: float = DEFAULT_DEADLINE,
) -> Iterator[Body]:
    """GET `url` (byte-for-byte as given; every redirect hop checked and pinned) and check
    its answer: status, declared length, and first bytes (`kind` is "audio" or "image").

    The body's chunks stream from the connection, which closes when the block ends; past
    `max_bytes` or cut short they raise. `heartbeat` is called every few seconds of wall
    time while bytes arrive (however slowly), so a slow but moving download is not taken for
    a dead one; past `deadline` seconds from the request the connection is closed and the
    download is a transient fault (SONGQUEUE_DOWNLOAD_DEADLINE, well under the hard task limit).
    """
    started = time.time()
    response = _get_following_redirects(check_url(url, policy, kind), timeout, kind, policy)
    with response, Cutoff(response, started + deadline) as cutoff:
        _check_status(response, kind)
        expected = _content_length(response)
        if expected is not None and expected > max_bytes:
            raise PermanentError("download_too_large", f"the {kind} file is {expected} bytes, over the cap of {max_bytes}")
        body = _capped_chunks(response, chunk_bytes, max_bytes, expected, kind, heartbeat, cutoff, deadline)
        first = _first_chunk(body, kind)
        extension, content_type = sniff_audio(first) if kind == "audio" else sniff_image(first)
        if extension is None:
            # Described, never quoted: the bytes may be anything (a metadata service's credentials).
            raise PermanentError(f"download_not_{kind}", f"the {kind} URL returned {describe_body(response, first)}, "
                                 f"not {kind} data")
        yield Body(extension, content_type, chain([first], body))


@contextmanager
def download_to_file(
    url: str,
    *,
    kind: str,
    max_bytes: int,
    timeout: float,
    chunk_bytes: int,
    spool_dir: str | None = None,
    heartbeat: Callable[[], None] | None = None,
    policy: UrlPolicy,
    deadline: float = DEFAULT_DEADLINE,
) -> Iterator[Downloaded]:
    """Download `url` as served to a spool file in `spool_dir`, hashed on the way.

    The file exists only inside the `with` block: it is deleted on the way out, whether
    the block succeeded or not.
    """
    with open_download(url, kind=kind, max_bytes=max_bytes, timeout=timeout, chunk_bytes=chunk_bytes,
                       heartbeat=heartbeat, policy=policy, deadline=deadline) as body, spool_path(spool_dir, kind) as path:
        digest = hashlib.sha256()
        size = 0
        with open(path, "wb") as out:
            for chunk in body.chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        yield Downloaded(path, size, digest.hexdigest(), body.extension, body.content_type)


def download_to_storage(
    url: str,
    storage: Storage,
    *,
    kind: str,
    key_for: Callable[[str], str],
    max_bytes: int,
    timeout: float,
    chunk_bytes: int,
    spool_dir: str | None = None,
    heartbeat: Callable[[], None] | None = None,
    policy: UrlPolicy,
    deadline: float = DEFAULT_DEADLINE,
) -> StoredObject:
    """Download `url` as is and store it under `key_for(extension)` (a cover, say)."""
    with download_to_file(url, kind=kind, max_bytes=max_bytes, timeout=timeout, chunk_bytes=chunk_bytes,
                          spool_dir=spool_dir, heartbeat=heartbeat, policy=policy, deadline=deadline) as downloaded:
        # Stored as served: the sha256 computed while spooling is the stored bytes' own.
        return storage.put_file(key_for(downloaded.extension), downloaded.path, downloaded.content_type,
                                upstream_sha256=downloaded.sha256, sha256=downloaded.sha256)


def _check_status(response: requests.Response, kind: str) -> None:
    status = response.status_code
    if status < 400:
        return
    if status == 429 or status >= 500:
        raise TransientError("download_unavailable", f"the {kind} URL answered HTTP {status}")
    reason = {403: "forbidden (the CDN may now require signed URLs)", 404: "not found", 410: "gone"}.get(status, "refused")
    raise PermanentError("download_failed", f"the {kind} URL answered HTTP {status}: {reason}")


def _content_length(response: requests.Response) -> int | None:
    # With a Content-Encoding (gzip from a CDN) the length counts encoded bytes, not the
    # decoded ones we store; urllib3 itself still refuses a short encoded body.
    if response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        return None
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _first_chunk(body: Iterator[bytes], kind: str) -> bytes:
    for chunk in body:
        if chunk:
            return chunk
    raise PermanentError(f"download_not_{kind}", f"the {kind} URL returned an empty body")


def _capped_chunks(
    response: requests.Response, chunk_bytes: int, max_bytes: int, expected: int | None, kind: str,
    heartbeat: Callable[[], None] | None = None, cutoff: Cutoff | None = None, deadline: float = 0.0,
) -> Iterator[bytes]:
    """The body in chunks of `chunk_bytes` (one write and hash call each), read in small
    reads that return as soon as bytes are there: the heartbeat goes by the clock between
    them, not between chunks (a 1 MiB chunk of a song arriving at 30 KB/s takes half a
    minute, longer than the watchdog's grace)."""
    raw = response.raw
    size = 0
    # The pieces of the next chunk, joined only when there are several: a fast connection
    # mostly returns a whole chunk in one read, which is then passed on without a copy.
    pending: list[bytes] = []
    pending_bytes = 0
    beat_at = time.monotonic() + HEARTBEAT_SECONDS
    try:
        while True:
            piece = raw.read1(chunk_bytes, decode_content=True)
            if heartbeat is not None and time.monotonic() >= beat_at:
                heartbeat()
                beat_at = time.monotonic() + HEARTBEAT_SECONDS
            if not piece:
                break
            size += len(piece)
            if size > max_bytes:
                raise PermanentError("download_too_large", f"the {kind} file exceeds the cap of {max_bytes} bytes")
            pending.append(piece)
            pending_bytes += len(piece)
            if pending_bytes >= chunk_bytes:
                yield _joined(pending)
                pending.clear()
                pending_bytes = 0
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        if cutoff is not None and cutoff.fired:
            raise TransientError("download_deadline", f"the {kind} download was not complete within its "
                                 f"deadline of {deadline:g}s ({size} bytes had arrived)") from exc
        raise TransientError("download_interrupted", f"the {kind} download broke off after {size} bytes") from exc
    if cutoff is not None and cutoff.fired and (expected is None or size != expected):
        raise TransientError("download_deadline", f"the {kind} download was not complete within its "
                             f"deadline of {deadline:g}s ({size} bytes had arrived)")
    if pending:
        yield _joined(pending)
    if expected is not None and size != expected:
        raise TransientError("download_truncated", f"the {kind} download ended at {size} of {expected} bytes")


def _joined(pieces: list[bytes]) -> bytes:
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _get_following_redirects(checked: CheckedUrl, timeout: float, kind: str, policy: UrlPolicy) -> requests.Response:
    """GET the URL, following redirects by hand: each hop checked by the guard and pinned before it is requested."""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = pinned_request(checked, "GET", stream=True, timeout=(min(timeout, 10.0), timeout))
        except requests.RequestException as exc:
            raise TransientError("download_interrupted", f"could not fetch the {kind} file: {type(exc).__name__}") from exc
        if not response.is_redirect:
            return response
        response.close()
        checked = check_url(requests.compat.urljoin(checked.url, response.headers["Location"]), policy, kind)
    raise PermanentError("download_bad_url", f"the {kind} URL redirected more than {MAX_REDIRECTS} times")


def describe_body(response: requests.Response, first: bytes) -> str:
    """What came instead of a media file: its declared type, its length and a hash prefix of its first bytes."""
    declared = response.headers.get("Content-Type", "no content type")
    length = response.headers.get("Content-Length")
    shown = "".join(c for c in declared[:80] if c.isprintable())
    size = f"{length} bytes" if length and length.isdigit() else f"at least {len(first)} bytes"
    return f"{shown or 'no content type'} ({size}, sha256 of the first {len(first)} bytes {hashlib.sha256(first).hexdigest()[:12]})"


# ------------------------------------------------------------------------------------------
# Recognise media from its first bytes; upstream URLs and headers are not trusted for it.

IMAGE_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
    (b"GIF87a", "gif", "image/gif"),
    (b"GIF89a", "gif", "image/gif"),
)


def sniff_image(head: bytes) -> tuple[str | None, str]:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp", "image/webp"
    for magic, extension, content_type in IMAGE_SIGNATURES:
        if head.startswith(magic):
            return extension, content_type
    return None, "application/octet-stream"


def sniff_audio(head: bytes) -> tuple[str | None, str]:
    """MP3: an ID3v2 tag or an MPEG audio frame sync at the start."""
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3", "audio/mpeg"
    return None, "application/octet-stream"


# ------------------------------------------------------------------------------------------
# Spool files: where a download is written before storage takes it.
#
# A spool file is created empty with the mode any file the worker writes gets (0o666 less
# the umask), because file storage may link this very file into place rather than copy it.
# It is deleted when the block ends, whatever happened; storage keeps its own link or copy.

@contextmanager
def spool_path(spool_dir: str | None, kind: str) -> Iterator[Path]:
    """A new empty file in `spool_dir` (the system temp folder when empty), named for `kind`."""
    folder = Path(spool_dir) if spool_dir else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"songqueue-{kind}-{uuid.uuid4().hex}.part"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------
# Start writing a spool file to disk while the rest of it still arrives.
#
# A stored song is fsynced before it counts as stored (workers/storage/file.py). Left to
# the end, that fsync waits for every byte of a 50 MiB file to reach the disk: about 40 ms
# on the benchmark machine, as long as curl takes for the whole download. Linux's
# sync_file_range(SYNC_FILE_RANGE_WRITE) starts writing a range out and returns at once,
# without dropping it from the page cache (the S3 upload and the header check read it
# back), so the disk works while the network does and the final fsync finds about 10 ms
# left. It is a hint, not a durability step: the fsync still makes the file durable.
# Python's os module has no binding for it, hence ctypes; where the call does not exist
# (not Linux), nothing happens and the fsync does all the work.

# Often enough that little is left for the fsync, seldom enough that the calls cost nothing.
EVERY_BYTES = 8 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2


def _bind() -> Callable[[int, int, int, int], int] | None:
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_sync_file_range = _bind()


def start_writeback(out: BinaryIO, start: int, end: int) -> None:
    """Start writing bytes [start, end) of the file behind `out` to disk; does not wait."""
    if _sync_file_range is None or end <= start:
        return
    out.flush()
    _sync_file_range(out.fileno(), start, end - start, _SYNC_FILE_RANGE_WRITE)  # a hint: its result does not matter
