"""The HTTP side of `songqueue metrics`: one asyncio loop, so slow clients cannot starve it.

A thread-per-connection server (prometheus_client's own) holds a thread for every
half-sent request, for ever. Here a connection costs a coroutine until its request head
arrives, which must happen within READ_TIMEOUT seconds (then it is closed); at most
MAX_CONNECTIONS are open at once (others are closed at once); the scrape itself, which
reads Redis and the broker, runs in a pool of SCRAPE_THREADS threads. Every answer closes
its connection (Prometheus opens one per scrape), so there is no idle keep-alive to hold.
With SONGQUEUE_METRICS_TOKEN set, /metrics wants `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

READ_TIMEOUT = 10.0
MAX_CONNECTIONS = 1024
MAX_HEAD_BYTES = 16 * 1024
SCRAPE_THREADS = 4
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class MetricsServer:
    """Serve `render()` (the exposition text) on GET /metrics; start() binds, then run on the loop."""

    render: Callable[[], bytes]
    token: str = ""
    read_timeout: float = READ_TIMEOUT
    max_connections: int = MAX_CONNECTIONS
    open_connections: int = 0
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(SCRAPE_THREADS, "metrics-scrape"))

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD_BYTES)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open_connections >= self.max_connections:
            writer.close()
            return
        self.open_connections += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.read_timeout)
            status, headers, body = await self._answer(head)
            writer.write(_response(status, headers, body))
            await asyncio.wait_for(writer.drain(), self.read_timeout)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # too slow, cut off, or a head over MAX_HEAD_BYTES: closed without an answer
        finally:
            self.open_connections -= 1
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _answer(self, head: bytes) -> tuple[int, dict[str, str], bytes]:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return 400, {}, b"bad request line\n"
        method, target, _ = parts
        if target.split("?", 1)[0] not in ("/metrics", "/"):
            return 404, {}, b"not found; try /metrics\n"
        if method not in ("GET", "HEAD"):
            return 405, {"Allow": "GET, HEAD"}, b"GET /metrics\n"
        if self.token and not _bearer_matches(lines[1:], self.token):
            return 401, {"WWW-Authenticate": 'Bearer realm="songqueue metrics"'}, b"a bearer token is required\n"
        body = await asyncio.get_running_loop().run_in_executor(self._pool, self.render)
        return 200, {"Content-Type": CONTENT_TYPE}, b"" if method == "HEAD" else body


def _bearer_matches(header_lines: list[str], token: str) -> bool:
    for line in header_lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "authorization":
            scheme, _, given = value.strip().partition(" ")
            # Constant time: the comparison must not tell how much of a guess was right.
            return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    return False


def _response(status: int, headers: dict[str, str], body: bytes) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}[status]
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items()),
             "Content-Type: text/plain; charset=utf-8" if "Content-Type" not in headers else "",
             f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(line for line in lines if line) + "\r\n\r\n").encode("latin-1") + body
