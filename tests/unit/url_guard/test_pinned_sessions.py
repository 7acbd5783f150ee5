"""Pinned HTTP sessions are kept per thread and per host and address: a second request to
the same host reuses the open connection; another host name, even on the same address,
gets a connection of its own (a pinned pool is never shared across hosts)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from producer.core.url_guard import CheckedUrl
from workers.upstream import pinned_http


class _Counting(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real gateways and CDNs answer

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        body = self.headers["Host"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Counting]:
    httpd = _Counting(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _checked(host: str, port: int) -> CheckedUrl:
    return CheckedUrl(url=f"http://{host}:{port}/x", scheme="http", host=host, port=port, address="127.0.0.1")


def test_a_second_request_to_the_host_reuses_the_connection(server: _Counting) -> None:
    port = server.server_address[1]
    for _ in range(3):
        response = pinned_http.pinned_request(_checked("songs.test", port), "GET", timeout=5)
        assert response.status_code == 200 and response.content == f"songs.test:{port}".encode()
    assert server.connections == 1

    other = pinned_http.pinned_request(_checked("covers.test", port), "GET", timeout=5)
    assert other.content == f"covers.test:{port}".encode()
    assert server.connections == 2


def test_a_streamed_response_hands_its_connection_back_when_closed(server: _Counting) -> None:
    port = server.server_address[1]
    checked = _checked("stream.test", port)
    with pinned_http.pinned_request(checked, "GET", timeout=5, stream=True) as response:
        assert b"".join(response.iter_content(1024)) == f"stream.test:{port}".encode()
    pinned_http.pinned_request(checked, "GET", timeout=5).close()
    assert server.connections == 1
