"""The server's guards, and `serve`: a body cap, head and body read timeouts, idle timeouts, 127.0.0.1.

The same `serve` runs `songqueue metrics` (producer/ops/metrics.py), with its own bounds.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and caps concurrent
connections (`limit_concurrency`), but neither caps a request body nor bounds how long it
takes to arrive; `BodyLimits` does both, for chunked bodies too (it counts what arrives,
not what Content-Length claims): 413 past the cap, 408 when the whole body has not
arrived within the read timeout.

Nor does uvicorn bound how long a request head may take: a client that sends half a head
was held for ever, and past `limit_concurrency` such connections turn every other client
away with 503. `HeadTimeout` closes a connection whose head has not arrived within the
read timeout (counted from the connection, or from the previous answer on keep-alive).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from producer.api.problems import problem_response
from producer.core.log_json import install_server_logging


class BodyLimits:
    """Reads the whole body first (it is small: the cap), then hands it to the app.

    Refusing while the app reads would be too late: FastAPI turns any error raised while
    it parses a body into its own 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout: float, caps: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout
        self.caps = caps or {}  # path -> its own cap (POST /v1/uploads takes files)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.caps.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            await problem_response(413, f"the body is over {cap} bytes")(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                await problem_response(408, f"the body did not arrive within {self.read_timeout:g} s")(scope, receive, send)
                return
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > cap:
                await problem_response(413, f"the body is over {cap} bytes")(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body: Message | None = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        async def replay() -> Message:
            nonlocal body
            if body is not None:
                message, body = body, None
                return message
            return await receive()  # after the body: only the disconnect is left to hear

        await self.app(scope, replay, send)


class HeadTimeout(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head (`head_timeout` seconds)."""

    head_timeout = 30.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_timer()  # a keep-alive connection's next head gets the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        # A request under way (its head arrived) is BodyLimits' business, or a stream's.
        waiting_for_head = self.cycle is None or self.cycle.response_complete
        if waiting_for_head and not self.transport.is_closing():
            self.transport.close()


def head_timeout_protocol(seconds: float) -> type[HeadTimeout]:
    return type("HeadTimeout", (HeadTimeout,), {"head_timeout": seconds})


def listening_socket(host: str, port: int) -> socket.socket:
    """The API's listening socket on host:port (0: a free port), Nagle off for what it accepts.

    IPPROTO_TCP is named, not left 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    whose proto says TCP, and accepted sockets inherit the listener's. Left 0, the body of
    every answer waited for the client's delayed ACK of its head: about 45 ms a request on
    a keep-alive connection (GET /healthz took 48 ms; 1 ms with this).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    # Listening before the banner: a client that reads it may connect at once (the
    # connection waits in the backlog until uvicorn accepts).
    sock.listen(2048)
    return sock


def server(app: Any, idle_timeout: float = 5.0, read_timeout: float = 30.0,
           limit_concurrency: int = 500) -> Any:
    """A `uvicorn.Server` for `app` with the guards: a deadline for each request head
    (`read_timeout`), idle keep-alive connections closed after `idle_timeout`, and past
    `limit_concurrency` connections a 503 for each new request."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    # With SONGQUEUE_LOG_JSON uvicorn configures no logging of its own: its loggers propagate
    # to the root's JSON handler, so its lines look like every other process's.
    log_config = None if install_server_logging() else LOGGING_CONFIG
    config = uvicorn.Config(app, http=head_timeout_protocol(read_timeout),
                            timeout_keep_alive=int(idle_timeout), limit_concurrency=limit_concurrency,
                            log_config=log_config, log_level="info", access_log=False, server_header=False)
    return uvicorn.Server(config)


def serve(app: Any, host: str, port: int, idle_timeout: float = 5.0, name: str = "songqueue api",
          read_timeout: float = 30.0, limit_concurrency: int = 500, path: str = "") -> int:
    """Run `app` on host:port (0: a free port); prints `NAME listening on URL` once bound
    (URL ends with `path`)."""
    sock = listening_socket(host, port)
    bound = sock.getsockname()[1]
    running = server(app, idle_timeout, read_timeout, limit_concurrency)
    print(f"{name} listening on http://{host}:{bound}{path}", flush=True)
    running.run(sockets=[sock])
    return 0
