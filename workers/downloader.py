"""Stream one asset from a result URL into storage: capped, checked, never half-visible."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain
from urllib.parse import urlparse

import requests

from producer.job_record import StoredObject
from workers.media_types import sniff_audio, sniff_image
from workers.storage import Storage
from workers.upstream_errors import PermanentError, TransientError

ALLOWED_SCHEMES = ("http", "https")


def check_url(url: str) -> None:
    scheme = urlparse(url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise PermanentError("download_bad_url", f"refusing to download from a {scheme or 'relative'}:// URL")


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
) -> StoredObject:
    """Download `url` (byte-for-byte as given) and store it under `key_for(extension)`.

    `kind` is "audio" or "image"; the first bytes must be of that kind.
    """
    check_url(url)
    try:
        response = session.get(url, stream=True, timeout=(min(timeout, 10.0), timeout))
    except requests.exceptions.InvalidSchema as exc:
        raise PermanentError("download_bad_url", "the download redirected to a non-http URL") from exc
    except requests.RequestException as exc:
        raise TransientError("download_interrupted", f"could not fetch the {kind} file: {type(exc).__name__}") from exc
    with response:
        for hop in [*response.history, response]:
            check_url(hop.url)
        _check_status(response, kind)
        expected = _content_length(response)
        if expected is not None and expected > max_bytes:
            raise PermanentError("download_too_large", f"the {kind} file is {expected} bytes, over the cap of {max_bytes}")
        body = _capped_chunks(response, chunk_bytes, max_bytes, expected, kind)
        first = _first_chunk(body, kind)
        if kind == "audio":
            extension, content_type = sniff_audio(first)
        else:
            extension, content_type = sniff_image(first)
        if extension is None:
            found = response.headers.get("Content-Type", "unknown type")
            raise PermanentError(f"download_not_{kind}", f"the {kind} URL returned {found}, not {kind} data: {first[:60]!r}")
        return storage.put(key_for(extension), chain([first], body), content_type)


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
    response: requests.Response, chunk_bytes: int, max_bytes: int, expected: int | None, kind: str
) -> Iterator[bytes]:
    size = 0
    try:
        for chunk in response.iter_content(chunk_bytes):
            size += len(chunk)
            if size > max_bytes:
                raise PermanentError("download_too_large", f"the {kind} file exceeds the cap of {max_bytes} bytes")
            yield chunk
    except requests.RequestException as exc:
        raise TransientError("download_interrupted", f"the {kind} download broke off after {size} bytes") from exc
    if expected is not None and size != expected:
        raise TransientError("download_truncated", f"the {kind} download ended at {size} of {expected} bytes")
