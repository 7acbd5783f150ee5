"""Request and Response as the endpoint handlers see them.

Handlers are plain functions from a Request to a Response; only server.py
touches sockets. Transport-level faults (a body cut short, a reset, a throttle)
are described on the Response and carried out by the server, so a handler
stays testable without a network.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Request:
    method: str
    raw_path: str  # the request target exactly as sent, percent-escapes untouched
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client: str = ""

    @property
    def path(self) -> str:
        """The raw path without its query string (still percent-encoded)."""
        return self.raw_path.split("?", 1)[0]

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.raw_path.partition("?")[2])


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # A streamed body (large files): chunks plus their total length.
    chunks: Callable[[], Iterator[bytes]] | None = None
    length: int | None = None
    # Transport faults, carried out by the server after the headers went out.
    cut_after: int | None = None  # send this many body bytes, then stop
    cut_mode: str = "close"  # "close": FIN after the short body; "reset": TCP RST
    throttle_bytes_per_s: float | None = None
    trickle_interval_s: float | None = None  # the body one byte at a time, this long apart
    drop: bool = False  # close the connection without sending a status line
    on_complete: Callable[[], None] | None = None  # called once the whole body was sent

    @property
    def content_length(self) -> int:
        return self.length if self.chunks is not None and self.length is not None else len(self.body)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(status, body, "application/json", dict(headers or {}))


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """The gateways' error envelope: same keys as success, data null."""
    return json_response(status, {"code": code, "message": message, "data": None}, headers)


def html_error(status: int, title: str) -> Response:
    """What a CDN or reverse proxy in front of a gateway answers: HTML, not JSON."""
    body = (
        f"<html><head><title>{title}</title></head><body><h1>{title}</h1>"
        "<p>sandbox injected fault</p><hr><center>nginx</center></body></html>"
    ).encode()
    return Response(status, body, "text/html; charset=utf-8")


def lost_answer(drop: bool) -> Response:
    """The request was acted upon, its answer lost: a proxy's 502 page, or no answer at all."""
    return Response(0, drop=True) if drop else html_error(502, "502 Bad Gateway")


def malformed(payload: Any) -> Response:
    """HTTP 200 with the first half of a JSON body: valid status, unparseable body."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(200, body[: max(1, len(body) // 2)], "application/json")


def redirect(status: int, location: str) -> Response:
    """A 3xx as a front server writes it: an HTML page and the Location header."""
    reason = {301: "Moved Permanently", 302: "Found", 303: "See Other", 307: "Temporary Redirect",
              308: "Permanent Redirect"}.get(status, "Redirect")
    response = html_error(status, f"{status} {reason}")
    response.headers["Location"] = location
    return response


def task_not_found() -> Response:
    """What a relay answers for a task id it does not know (yet, or any more)."""
    return json_response(404, {"code": "error", "message": "task not found"})
