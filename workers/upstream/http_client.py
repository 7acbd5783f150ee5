"""Upstream HTTP calls with bounded bodies and faults sorted into transient and permanent."""

from __future__ import annotations

import json
import re
from email.utils import parsedate_to_datetime
from time import time
from typing import Any, Protocol
from urllib.parse import urlparse

import requests
from pydantic import SecretStr
from urllib3.exceptions import MaxRetryError, NewConnectionError

from producer.core.models.text_rules import clean_text
from workers.upstream.errors import PermanentError, TransientError

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
    gateway may have lost an accepted answer) and a garbled success body raise
    TransientError(maybe_accepted=True), since the request may have been acted upon.
    Connection refused, DNS failure and connect timeouts happen before anything is sent.

    With a `sink`, a success body goes through it chunk by chunk and only what it keeps is
    parsed; the sink enforces its own caps (`max_bytes` still bounds error bodies).
    """
    # `timeout` bounds each read; the whole answer gets no longer either, so a body that
    # trickles in cannot outlast the watchdog's deadline for the call.
    deadline = time() + min(timeout, CONNECT_TIMEOUT) + timeout
    try:
        response = session.request(method, url, timeout=(min(timeout, CONNECT_TIMEOUT), timeout), stream=True, **kwargs)
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
    with response:
        try:
            if sink is not None and status < 300:
                body = _read_into(response, sink, deadline)
            else:
                body = _read_capped(response, max_bytes, deadline)
        except requests.RequestException as exc:
            raise TransientError("upstream_broken_body", "the upstream's answer was cut off", maybe_accepted=True) from exc
        except TimeoutError as exc:
            raise TransientError(
                "upstream_timeout", f"the upstream's answer took longer than {timeout:g}s to arrive", maybe_accepted=True
            ) from exc
        except PermanentError as exc:
            if exc.maybe_accepted:
                raise  # the sink's verdict on a billed success
            if status == 429 or status >= 500:
                # An oversized error page is still an error page: the fault is transient.
                body = b"(oversized error page)"
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
            "upstream_unavailable", f"the upstream answered HTTP {status}: {_describe(body)}", maybe_accepted=True
        )
    if status >= 400:
        raise PermanentError("upstream_rejected", f"the upstream refused the request (HTTP {status}): {_describe(body)}")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise TransientError(
            "upstream_malformed", f"the upstream's answer is not JSON: {_describe(body)}", maybe_accepted=True
        ) from exc


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection failed before the request went out (refused, DNS failure)."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)  # NameResolutionError is one too


def _read_capped(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(64 * 1024):
        if time() > deadline:
            raise TimeoutError("the answer's deadline passed")
        size += len(chunk)
        if size > max_bytes:
            raise PermanentError("upstream_body_too_large", f"the upstream's answer is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _read_into(response: requests.Response, sink: BodySink, deadline: float) -> bytes:
    for chunk in response.iter_content(64 * 1024):
        if time() > deadline:
            raise TimeoutError("the answer's deadline passed")
        sink.feed(chunk)
    return sink.finish()


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


_TAGS = re.compile(r"<[^>]+>")


def _describe(body: bytes) -> str:
    """The upstream's own words, short: a JSON `message`, or the text of an HTML page."""
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict) and parsed.get("message"):
            return clean_text(str(parsed["message"]))
    except ValueError:
        pass
    return clean_text(_TAGS.sub(" ", text)) or "(empty body)"


def _host(url: str) -> str:
    return urlparse(url).netloc
