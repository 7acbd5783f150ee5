"""`songqueue metrics`' HTTP side: prometheus_client's ASGI app under uvicorn with the API's
guards. Slow clients are held without threads and others still answered, slow heads are cut
off, connections past the cap get 503, and the token is checked before anything is collected."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import requests
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from deploy.local.stack import wait_until
from producer.api.server import listening_socket, server
from producer.ops.metrics import metrics_app

SLOW_CLIENTS = 300


class Up(Collector):
    def __init__(self) -> None:
        self.scrapes = 0

    def collect(self) -> Iterable[Metric]:
        self.scrapes += 1
        yield GaugeMetricFamily("songqueue_up", "Whether songqueue is up.", value=1)


def _registry(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


@contextmanager
def running(app: Any, read_timeout: float = 600, max_connections: int = 1024) -> Iterator[tuple[int, Any]]:
    """The app under uvicorn (as `serve` runs it) in a thread; yields its port and the server."""
    sock = listening_socket("127.0.0.1", 0)
    uv = server(app, read_timeout=read_timeout, limit_concurrency=max_connections)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: uv.started, 30, "uvicorn to start")
        yield sock.getsockname()[1], uv
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _open(uv: Any) -> int:
    return len(uv.server_state.connections)


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
    threads_before = threading.active_count()
    with running(metrics_app(_registry(Up()))) as (port, uv), ExitStack() as sockets:
        slow = [_half_sent(port, sockets) for _ in range(SLOW_CLIENTS)]
        wait_until(lambda: _open(uv) >= SLOW_CLIENTS, 30, "the slow clients to be accepted")
        answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
        assert answer.status_code == 200
        assert "songqueue_up 1.0" in answer.text
        # Answered while every slow client is still held open, and no thread was spent on them.
        assert not any(_closed_by_server(s) for s in slow)
        assert threading.active_count() <= threads_before + 2  # uvicorn's thread and one scrape thread


def test_slow_clients_are_cut_off_after_the_read_timeout() -> None:
    with running(metrics_app(_registry(Up())), read_timeout=0.2) as (port, uv), ExitStack() as sockets:
        slow = [_half_sent(port, sockets) for _ in range(20)]
        wait_until(lambda: all(_closed_by_server(s) for s in slow), 30, "the slow clients to be closed")
        wait_until(lambda: _open(uv) == 0, 30, "every connection to be gone")


def test_requests_past_the_connection_cap_get_503() -> None:
    with running(metrics_app(_registry(Up())), max_connections=5) as (port, uv), ExitStack() as sockets:
        held = [_half_sent(port, sockets) for _ in range(5)]
        wait_until(lambda: _open(uv) == 5, 30, "five held connections")
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 503
        assert not any(_closed_by_server(s) for s in held)


def test_the_token_is_required_when_set_and_checked_before_anything_is_collected() -> None:
    up = Up()
    with running(metrics_app(_registry(up), token="t0ken")) as (port, _):
        url = f"http://127.0.0.1:{port}/metrics"
        assert requests.get(url, timeout=10).status_code == 401
        wrong = requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10)
        assert (wrong.status_code, wrong.headers["WWW-Authenticate"]) == (401, 'Bearer realm="songqueue metrics"')
        basic = requests.get(url, headers={"Authorization": "Basic t0ken"}, timeout=10)
        assert basic.status_code == 401
        assert "songqueue_up" not in basic.text
        assert up.scrapes == 0  # nothing was collected for any of them
        ok = requests.get(url, headers={"Authorization": "Bearer t0ken"}, timeout=10)
        assert ok.status_code == 200
        assert "songqueue_up 1.0" in ok.text
        assert ok.headers["Content-Type"].startswith("text/plain; version=")
        assert up.scrapes == 1
        assert requests.post(url, headers={"Authorization": "Bearer t0ken"}, timeout=10).status_code == 405
        assert requests.get(f"http://127.0.0.1:{port}/other", timeout=10).status_code == 404


def test_prometheus_client_renders_the_answer_openmetrics_and_head_included() -> None:
    with running(metrics_app(_registry(Up()))) as (port, _):
        url = f"http://127.0.0.1:{port}/metrics"
        om = requests.get(url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}, timeout=10)
        assert om.headers["Content-Type"].startswith("application/openmetrics-text")
        assert om.text.endswith("# EOF\n")
        head = requests.head(url, timeout=10)
        assert (head.status_code, head.content) == (200, b"")
