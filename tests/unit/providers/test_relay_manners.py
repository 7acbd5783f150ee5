"""The rules of upstream calls that hold whatever the relay does (docs/faults.md), against a
real local HTTP server: a deadline that closes a trickling answer, a complete answer never
thrown away, no redirect followed, no error page quoted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.http_fixture import LocalServer
from workers.providers.udio import UdioProvider
from workers.upstream import http_client
from workers.upstream.errors import PermanentError, TaskUnknown, TransientError
from workers.upstream.http_client import call_json, new_session

ANSWER = b'{"code": "success", "message": "", "data": "task-paid-1"}'


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as local:
        yield local


@pytest.fixture
def target() -> Iterator[LocalServer]:
    """Where a hostile redirect points: a private address nobody configured."""
    with LocalServer(host="127.0.0.2") as local:
        local.route("/steal", status=500, body=b"SECRET-PAGE-OF-THE-TARGET")
        yield local


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with new_session() as s:
        yield s


@pytest.fixture
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # The deadline is read timeout + connect budget; a small connect budget keeps tests short.
    monkeypatch.setattr(http_client, "CONNECT_TIMEOUT", 0.5)


def _trickle(body: bytes, gap: float, declared: int | None = None, stop: threading.Event | None = None) -> Any:
    """Headers at once, then the body one byte every `gap` seconds (then held open until `stop`)."""
    def handler(h: Any) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body) if declared is None else declared))
        h.end_headers()
        h.wfile.flush()
        try:
            for byte in body:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
                if stop is not None and stop.wait(gap):
                    return
                if stop is None:
                    threading.Event().wait(gap)
            if stop is not None:
                stop.wait(30)
        except OSError:
            h.server_cut = True  # the client hung up before the body was out
    return handler


def test_a_trickling_answer_complete_within_the_deadline_is_used(server: LocalServer, session) -> None:
    """Each read is short, but the whole answer takes longer than twice the read timeout:
    it is still within the call's deadline (read timeout + the 10 s connect budget, what the
    watchdog gives a submit in flight), so it is used. The old clock (connect + read timeout,
    2 s here) threw it away."""
    url = server.route("/submit", handler=_trickle(ANSWER, 0.05))  # ~2.9 s in all
    body = call_json(session, "POST", url, timeout=1.0, max_bytes=1 << 20)
    assert body["data"] == "task-paid-1"


def test_the_deadline_closes_a_trickle_and_keeps_a_complete_json_body(server: LocalServer, session,
                                                                      short_deadline) -> None:
    """Complete JSON, then nothing more of a longer declared body: at the deadline the
    connection is closed and the JSON in hand is used, a paid task id not thrown away."""
    stop = threading.Event()
    url = server.route("/submit", handler=_trickle(ANSWER, 0.01, declared=len(ANSWER) + 50, stop=stop))
    try:
        body = call_json(session, "POST", url, timeout=0.8, max_bytes=1 << 20)
    finally:
        stop.set()
    assert body["data"] == "task-paid-1"


def test_the_deadline_closes_a_body_that_trickles_past_it(server: LocalServer, session, short_deadline) -> None:
    """One byte every 0.2 s never trips the 1 s read timeout; the deadline (1.5 s) closes the
    connection long before the 11 s the body would take, and the call is uncertain."""
    stop = threading.Event()
    cut = threading.Event()

    def handler(h: Any) -> None:
        _trickle(ANSWER, 0.2, stop=stop)(h)
        if getattr(h, "server_cut", False):
            cut.set()

    url = server.route("/submit", handler=handler)
    try:
        with pytest.raises(TransientError) as caught:
            call_json(session, "POST", url, timeout=1.0, max_bytes=1 << 20)
        # The server saw the client hang up while it still had bytes to send: the proof the
        # deadline acted on the connection, not on a clock read after the whole body.
        assert cut.wait(10)
    finally:
        stop.set()
    assert caught.value.code == "upstream_timeout" and caught.value.maybe_accepted is True


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_on_a_paid_post_is_uncertain_and_never_followed(server: LocalServer, target: LocalServer,
                                                                   session, status: int) -> None:
    url = server.route("/submit", status=status, headers={"Location": target.url("/steal")})
    with pytest.raises(TransientError) as caught:
        call_json(session, "POST", url, json={"prompt": "x"}, timeout=2, max_bytes=1 << 20)
    assert caught.value.code == "upstream_redirected" and caught.value.maybe_accepted is True
    assert target.requests == []  # the paid POST was not sent again, anywhere
    assert "SECRET" not in caught.value.message and "127.0.0.2" not in caught.value.message


def test_a_redirected_fetch_reaches_no_one(server: LocalServer, target: LocalServer, session) -> None:
    url = server.route("/udio/fetch/t1", status=302, headers={"Location": target.url("/steal")})
    with pytest.raises(TransientError) as caught:
        call_json(session, "GET", url, timeout=2, max_bytes=1 << 20)
    assert caught.value.code == "upstream_redirected" and caught.value.maybe_accepted is False
    assert target.requests == []


@pytest.mark.parametrize("answer", [
    {"status": 404, "body": b'{"code":"error","message":"task not found"}'},
    {"status": 200, "body": b'{"code":"error","message":"task_not_exist"}'},
], ids=["404", "envelope"])
def test_a_task_the_gateway_does_not_know_is_unknown_not_refused(server: LocalServer, session,
                                                                 answer: dict[str, Any]) -> None:
    server.route("/udio/fetch/t1", status=answer["status"], body=answer["body"])
    provider = UdioProvider(server.url(""), api_key=http_client.SecretStr("k"), submit_path="/udio/generate-proxy",
                            session=session, timeout=2, max_json_bytes=1 << 20)
    with pytest.raises(TaskUnknown):
        provider.fetch("t1")


def test_another_4xx_on_a_fetch_is_still_a_refusal(server: LocalServer, session) -> None:
    server.route("/udio/fetch/t1", status=401, body=b'{"code":"error","message":"bad key"}')
    provider = UdioProvider(server.url(""), api_key=http_client.SecretStr("k"), submit_path="/udio/generate-proxy",
                            session=session, timeout=2, max_json_bytes=1 << 20)
    with pytest.raises(PermanentError) as caught:
        provider.fetch("t1")
    assert caught.value.code == "upstream_rejected" and "bad key" not in caught.value.message
