"""A tiny real HTTP server for unit tests: routes answer canned bytes, or run a function.

    with LocalServer() as server:
        server.route("/a", status=429, headers={"Retry-After": "3"}, body=b"slow down")
        server.route("/raw", handler=lambda h: h.wfile.write(b"HTTP/1.0 200 OK\\r\\n..."))
        requests.get(server.url("/a"))
        server.requests  # [("GET", "/a", headers, body), ...]

HTTP/1.0, so every connection closes after one answer (a short body is a truncated body).
Handler threads are joined on close; `server.released` is set first so a handler that
blocks on it (to provoke a client timeout) ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    handler: Handler | None = None


class _Server(ThreadingHTTPServer):
    # Joined in server_close(), so no handler thread outlives the test.
    daemon_threads = False
    block_on_close = True


class LocalServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.released = threading.Event()
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.requests.append((self.command, self.path, dict(self.headers), body))
                route = owner.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    route = Route(status=404, body=b"no such route")
                if route.handler is not None:
                    route.handler(self)
                    return
                self.send_response(route.status)
                headers = {"Content-Length": str(len(route.body)), **route.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(route.body)

            do_GET = do_POST = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
                pass

        self._server = _Server((host, 0), _Handler)
        self.port = self._server.server_address[1]
        # A short poll interval: shutdown() waits up to one interval.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), name="local-http",
                                        daemon=True)

    def route(self, path: str, status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None,
              handler: Handler | None = None) -> str:
        """Register an answer for `path` (the path before any query); returns its URL."""
        self.routes[path] = Route(status, body, dict(headers or {}), handler)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def closed_port() -> int:
    """A local port with nothing listening on it (bound then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
