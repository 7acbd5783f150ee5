"""`songqueue metrics`' HTTP server: slow clients are held without threads, others still answered; the token."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import requests

from deploy.local.stack import wait_until
from producer.ops.metrics_server import MetricsServer

SLOW_CLIENTS = 300


@contextmanager
def running(server: MetricsServer) -> Iterator[int]:
    """The server on its own event loop in a thread; yields its port."""
    loop = asyncio.new_event_loop()
    started = loop.run_until_complete(server.start("127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield started.sockets[0].getsockname()[1]
    finally:
        # The clients are gone by now (the tests close theirs first): let their handlers end.
        wait_until(lambda: server.open_connections == 0, 30, "every handler to end")
        asyncio.run_coroutine_threadsafe(_shut_down(started), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def _shut_down(started: asyncio.Server) -> None:
    started.close()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def _half_sent(port: int, sockets: ExitStack) -> socket.socket:
    s = sockets.enter_context(socket.create_connection(("127.0.0.1", port)))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # the head never ends
    return s


def _closed_by_server(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:  # closed with our unread head in its buffer
        return True
    finally:
        s.setblocking(True)


def test_a_normal_client_is_answered_while_hundreds_of_slow_ones_are_held() -> None:
    server = MetricsServer(lambda: b"songqueue_up 1\n", read_timeout=600)
    threads_before = threading.active_count()
    with running(server) as port, ExitStack() as sockets:
        slow = [_half_sent(port, sockets) for _ in range(SLOW_CLIENTS)]
        wait_until(lambda: server.open_connections == SLOW_CLIENTS, 30, "the slow clients to be accepted")
        answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
        assert (answer.status_code, answer.text) == (200, "songqueue_up 1\n")
        # Answered while every slow client is still held open, and no thread was spent on them.
        # (The normal client's own connection closes just after its answer: wait for that.)
        wait_until(lambda: server.open_connections == SLOW_CLIENTS, 30, "the normal client's connection to close")
        assert not any(_closed_by_server(s) for s in slow)
        assert threading.active_count() <= threads_before + 2  # the loop's thread and one scrape thread


def test_slow_clients_are_cut_off_after_the_read_timeout() -> None:
    server = MetricsServer(lambda: b"", read_timeout=0.2)
    with running(server) as port, ExitStack() as sockets:
        slow = [_half_sent(port, sockets) for _ in range(20)]
        wait_until(lambda: all(_closed_by_server(s) for s in slow), 30, "the slow clients to be closed")
        assert server.open_connections == 0


def test_connections_over_the_cap_are_closed_at_once() -> None:
    server = MetricsServer(lambda: b"", read_timeout=600, max_connections=5)
    with running(server) as port, ExitStack() as sockets:
        held = [_half_sent(port, sockets) for _ in range(5)]
        wait_until(lambda: server.open_connections == 5, 30, "five held connections")
        extra = _half_sent(port, sockets)
        wait_until(lambda: _closed_by_server(extra), 30, "the sixth connection to be closed")
        assert not any(_closed_by_server(s) for s in held)


def test_the_token_is_required_when_set() -> None:
    server = MetricsServer(lambda: b"secret numbers\n", token="t0ken")
    with running(server) as port:
        url = f"http://127.0.0.1:{port}/metrics"
        assert requests.get(url, timeout=10).status_code == 401
        assert requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
        assert "secret" not in requests.get(url, headers={"Authorization": "Basic t0ken"}, timeout=10).text
        ok = requests.get(url, headers={"Authorization": "Bearer t0ken"}, timeout=10)
        assert (ok.status_code, ok.text) == (200, "secret numbers\n")
        assert requests.post(url, headers={"Authorization": "Bearer t0ken"}, timeout=10).status_code == 405
        assert requests.get(f"http://127.0.0.1:{port}/other", timeout=10).status_code == 404
