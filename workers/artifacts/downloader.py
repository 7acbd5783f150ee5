"""Stream one asset from a result URL to a spool file, then into storage: capped, checked,
never half-visible."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

import requests

from producer.models.job_record import StoredObject
from workers.artifacts.media_types import sniff_audio, sniff_image
from workers.storage import Storage
from workers.upstream.errors import PermanentError, TransientError

ALLOWED_SCHEMES = ("http", "https")
HEARTBEAT_SECONDS = 5.0


MAX_REDIRECTS = 5


def check_url(url: str, allowed_hosts: Collection[str] = ()) -> None:
    """http/https only; with an allow-list, only those hosts and their subdomains."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise PermanentError("download_bad_url", f"refusing to download from a {scheme or 'relative'}:// URL")
    host = (parsed.hostname or "").lower()
    if allowed_hosts and not any(host == h or host.endswith("." + h) for h in allowed_hosts):
        raise PermanentError(
            "download_host_not_allowed",
            f"refusing to download from {host or 'no host'}: not in SONGQUEUE_DOWNLOAD_ALLOWED_HOSTS")


@dataclass(frozen=True)
class Downloaded:
    """A complete download in the spool: the upstream's bytes, as served."""

    path: Path
    size: int
    sha256: str
    extension: str
    content_type: str


@contextmanager
def download_to_file(
    session: requests.Session,
    url: str,
    *,
    kind: str,
    max_bytes: int,
    timeout: float,
    chunk_bytes: int,
    spool_dir: str | None = None,
    heartbeat: Callable[[], None] | None = None,
    allowed_hosts: Collection[str] = (),
) -> Iterator[Downloaded]:
    """Download `url` (byte-for-byte as given) to a temporary file in `spool_dir`.

    `kind` is "audio" or "image"; the first bytes must be of that kind. `heartbeat` is
    called every few seconds while bytes flow, so a long download is not taken for a
    dead one. The file exists only inside the `with` block: it is deleted on the way
    out, whether the block succeeded or not.
    """
    check_url(url, allowed_hosts)
    if spool_dir:
        Path(spool_dir).mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool_dir or None, prefix=f"songqueue-{kind}-", suffix=".part")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            size, sha256, extension, content_type = _fetch(
                session, url, out, kind, max_bytes, timeout, chunk_bytes, heartbeat, allowed_hosts)
        yield Downloaded(path, size, sha256, extension, content_type)
    finally:
        path.unlink(missing_ok=True)


def download_to_storage(
    session: requests.Session,
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
    allowed_hosts: Collection[str] = (),
) -> StoredObject:
    """Download `url` as is and store it under `key_for(extension)` (a cover, say)."""
    with download_to_file(session, url, kind=kind, max_bytes=max_bytes, timeout=timeout, chunk_bytes=chunk_bytes,
                          spool_dir=spool_dir, heartbeat=heartbeat, allowed_hosts=allowed_hosts) as downloaded:
        return storage.put_file(key_for(downloaded.extension), downloaded.path, downloaded.content_type,
                                upstream_sha256=downloaded.sha256)


def _fetch(
    session: requests.Session, url: str, out: BinaryIO, kind: str, max_bytes: int, timeout: float,
    chunk_bytes: int, heartbeat: Callable[[], None] | None, allowed_hosts: Collection[str] = (),
) -> tuple[int, str, str, str]:
    """Stream the body into `out`; returns (size, sha256, extension, content type)."""
    response = _get_following_redirects(session, url, timeout, kind, allowed_hosts)
    with response:
        _check_status(response, kind)
        expected = _content_length(response)
        if expected is not None and expected > max_bytes:
            raise PermanentError("download_too_large", f"the {kind} file is {expected} bytes, over the cap of {max_bytes}")
        body = _capped_chunks(response, chunk_bytes, max_bytes, expected, kind, heartbeat)
        first = _first_chunk(body, kind)
        if kind == "audio":
            extension, content_type = sniff_audio(first)
        else:
            extension, content_type = sniff_image(first)
        if extension is None:
            found = response.headers.get("Content-Type", "unknown type")
            raise PermanentError(f"download_not_{kind}", f"the {kind} URL returned {found}, not {kind} data: {first[:60]!r}")
        digest = hashlib.sha256()
        size = 0
        for chunk in chain([first], body):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest(), extension, content_type


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
    heartbeat: Callable[[], None] | None = None,
) -> Iterator[bytes]:
    size = 0
    beat_at = time.monotonic() + HEARTBEAT_SECONDS
    try:
        for chunk in response.iter_content(chunk_bytes):
            if heartbeat is not None and time.monotonic() >= beat_at:
                heartbeat()
                beat_at = time.monotonic() + HEARTBEAT_SECONDS
            size += len(chunk)
            if size > max_bytes:
                raise PermanentError("download_too_large", f"the {kind} file exceeds the cap of {max_bytes} bytes")
            yield chunk
    except requests.RequestException as exc:
        raise TransientError("download_interrupted", f"the {kind} download broke off after {size} bytes") from exc
    if expected is not None and size != expected:
        raise TransientError("download_truncated", f"the {kind} download ended at {size} of {expected} bytes")


def _get_following_redirects(
    session: requests.Session, url: str, timeout: float, kind: str, allowed_hosts: Collection[str]
) -> requests.Response:
    """GET `url`, following redirects by hand so each hop is checked before it is requested."""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = session.get(url, stream=True, timeout=(min(timeout, 10.0), timeout), allow_redirects=False)
        except requests.RequestException as exc:
            raise TransientError("download_interrupted", f"could not fetch the {kind} file: {type(exc).__name__}") from exc
        if not response.is_redirect:
            return response
        response.close()
        url = requests.compat.urljoin(url, response.headers["Location"])
        check_url(url, allowed_hosts)
    raise PermanentError("download_bad_url", f"the {kind} URL redirected more than {MAX_REDIRECTS} times")
