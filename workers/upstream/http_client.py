"""Upstream HTTP calls with bounded bodies and faults sorted into transient and permanent."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from time import time
from typing import Any, Protocol
from urllib.parse import urlparse

import requests
import urllib3
from pydantic import SecretStr
from urllib3.exceptions import MaxRetryError, NewConnectionError

from workers.upstream.cutoff import Cutoff
from workers.upstream.errors import PermanentError, TransientError

log = logging.getLogger("songqueue.upstream")

USER_AGENT = "songqueue/0.1"
CONNECT_TIMEOUT = 10.0  # at most; a shorter call timeout shortens it too


def bearer_headers(api_key: SecretStr) -> dict[str, str]:
    """The headers of every gateway call: the key as a Bearer token, JSON expected back."""
    return {"Authorization": f"Bearer {api_key.get_secret_value()}", "Accept": "application/json"}


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    # Proxies from the environment would see our Authorization header; be explicit.
    session.trust_env = False
    return session


class BodySink(Protocol):
    """Takes a success body as it arrives and keeps the small JSON part (MiniMax's hex)."""

    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> bytes: ...


def call_deadline(timeout: float) -> float:
    """The most one call may take, seconds: what the watchdog gives a submit in flight
    (workers/tasks/submit.py checks in `provider.timeout + CONNECT_TIMEOUT`), so a call
    never outlives the budget the watchdog counts on."""
    return timeout + CONNECT_TIMEOUT


def call_json(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    sink: BodySink | None = None,
    **kwargs: Any,
) -> Any:
    """Send a request and return its parsed JSON body, or raise an UpstreamError.

    Once the request has left, only an answer that proves rejection (429, a 4xx) is
    certain: a read timeout, a dropped connection, a 5xx (a proxy or CDN in front of the
    gateway may have lost an accepted answer), a redirect and a garbled success body raise
    TransientError(maybe_accepted=True) on a call that may be paid (anything but a GET),
    since the request may have been acted upon. Connection refused, DNS failure and
    connect timeouts happen before anything is sent.

    The rules that hold whatever the gateway does (docs/faults.md, "Rules that hold whatever
    the relay does"):
    - the call's deadline (`call_deadline`) closes the connection when it passes, however
      the body trickles; whatever had arrived whole by then (a body whose Content-Length is
      complete, or complete JSON) is used, never thrown away;
    - no redirect is followed (docs/outbound-urls.md): a paid POST is never sent twice, and
      a redirect's target is never asked anything;
    - an error page reaches an error message only as a summary ("HTTP 502 with an HTML body
      of 1234 bytes"), never its bytes.

    With a `sink`, a success body goes through it chunk by chunk and only what it keeps is
    parsed; the sink enforces its own caps (`max_bytes` still bounds error bodies).
    """
    deadline = time() + call_deadline(timeout)
    paid = method.upper() != "GET"
    try:
        response = session.request(method, url, timeout=(min(timeout, CONNECT_TIMEOUT), timeout), stream=True,
                                   allow_redirects=False, **kwargs)
    except requests.ConnectTimeout as exc:
        raise TransientError("upstream_unreachable", f"connecting to the upstream timed out ({_host(url)})") from exc
    except requests.ConnectionError as exc:
        # Read timeouts arrive here too (urllib3 wraps them) but only after sending.
        if isinstance(exc, requests.ReadTimeout) or "Read timed out" in str(exc):
            raise TransientError(
                "upstream_timeout", f"the upstream did not answer within {timeout:g}s", maybe_accepted=True
            ) from exc
        if _never_sent(exc):
            raise TransientError("upstream_unreachable", f"could not connect to the upstream ({_host(url)})") from exc
        raise TransientError(
            "upstream_dropped", f"the upstream closed the connection without an answer ({_host(url)})",
            maybe_accepted=True,
        ) from exc
    except requests.Timeout as exc:
        raise TransientError(
            "upstream_timeout", f"the upstream did not answer within {timeout:g}s", maybe_accepted=True
        ) from exc
    status = response.status_code
    with response, Cutoff(response, deadline) as cutoff:
        if 300 <= status < 400:
            # Never followed: its target was not configured (docs/outbound-urls.md), and a
            # 307/308 would send a paid POST again. Its body is not read either.
            raise TransientError(
                "upstream_redirected",
                f"the upstream answered HTTP {status}, a redirect, which songqueue does not follow"
                + (" (the request may have been acted upon)" if paid else ""),
                maybe_accepted=paid,
            )
        try:
            if sink is not None and status < 300:
                body = _read_into(response, sink, cutoff)
            else:
                body = _read_capped(response, max_bytes, cutoff)
        except _Cut as cut:
            if cut.timed_out:
                raise TransientError(
                    "upstream_timeout",
                    f"the upstream's answer was not complete within {call_deadline(timeout):g}s "
                    f"({cut.size} bytes had arrived)", maybe_accepted=True,
                ) from None
            raise TransientError("upstream_broken_body", "the upstream's answer was cut off",
                                 maybe_accepted=True) from None
        except PermanentError as exc:
            if exc.maybe_accepted:
                raise  # the sink's verdict on a billed success
            if status == 429 or status >= 500:
                # An oversized error page is still an error page: the fault is transient.
                body = b""
            elif status < 300:
                # An oversized success was still a success upstream: it may have been billed.
                raise PermanentError("upstream_body_too_large",
                                     f"the upstream's answer is larger than {max_bytes} bytes",
                                     maybe_accepted=True) from None
            else:
                raise
    if status == 429:
        raise TransientError(
            "upstream_rate_limited", "the upstream answered 429 Too Many Requests",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status >= 500:
        raise TransientError(
            "upstream_unavailable", f"the upstream answered {describe(status, response, body)}", maybe_accepted=True
        )
    if status >= 400:
        raise PermanentError("upstream_rejected", f"the upstream refused the request: {describe(status, response, body)}",
                             http_status=status)
    try:
        return json.loads(body)
    except ValueError as exc:
        raise TransientError(
            "upstream_malformed", f"the upstream's answer is not JSON ({describe(status, response, body)})",
            maybe_accepted=True,
        ) from exc


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection failed before the request went out (refused, DNS failure)."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)  # NameResolutionError is one too


class _Cut(Exception):
    """The body stopped before it was whole: the deadline closed it (`timed_out`) or it broke."""

    def __init__(self, timed_out: bool, size: int) -> None:
        super().__init__("cut")
        self.timed_out = timed_out
        self.size = size


# Small reads: each returns as soon as some bytes are there, so what arrived is ours when
# the deadline closes the connection (a large read would hold it in its own buffer).
_READ = 64 * 1024


def _chunks(response: requests.Response, cutoff: Cutoff) -> Iterator[bytes]:
    """The body's bytes as they arrive (decoded), until it is complete or stops; _Cut then."""
    raw = response.raw
    size = 0
    while True:
        try:
            chunk = raw.read1(_READ, decode_content=True)
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            raise _Cut(cutoff.fired, size) from None
        if not chunk:
            remaining = raw.length_remaining
            if cutoff.fired or (remaining is not None and remaining > 0):
                raise _Cut(cutoff.fired, size)
            return
        size += len(chunk)
        yield chunk


def _read_capped(response: requests.Response, max_bytes: int, cutoff: Cutoff) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in _chunks(response, cutoff):
            size += len(chunk)
            if size > max_bytes:
                raise PermanentError("upstream_body_too_large",
                                     f"the upstream's answer is larger than {max_bytes} bytes")
            chunks.append(chunk)
    except _Cut:
        body = b"".join(chunks)
        if _whole_json(body):
            # Complete JSON whose end never came (a stalled trailer, the deadline): an
            # answer in hand, maybe a paid task id, is never thrown away.
            log.warning("the upstream's answer stopped after %d bytes of complete JSON; using it", size)
            return body
        raise
    return b"".join(chunks)


def _read_into(response: requests.Response, sink: BodySink, cutoff: Cutoff) -> bytes:
    for chunk in _chunks(response, cutoff):
        sink.feed(chunk)
    return sink.finish()


def _whole_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


def describe(status: int, response: requests.Response, body: bytes) -> str:
    """An answer described, never quoted: its bytes came from elsewhere (an error page, a
    proxy, a redirect's target) and must not reach a job's error, which its tenant reads."""
    if not body:
        return f"HTTP {status} with an empty body"
    return f"HTTP {status} with {_kind(response, body)} body of {len(body)} bytes"


def _kind(response: requests.Response, body: bytes) -> str:
    declared = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if "json" in declared or _whole_json(body):
        return "a JSON"
    if "html" in declared or body.lstrip()[:1] == b"<":
        return "an HTML"
    return "a text" if declared.startswith("text/") else "an unreadable"


def _host(url: str) -> str:
    return urlparse(url).netloc
