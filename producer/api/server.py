"""The server's guards, and `serve`: head read timeouts, idle timeouts, 127.0.0.1.

The same `serve` runs `songqueue metrics` (producer/ops/metrics.py), with its own bounds.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and caps concurrent
connections (`limit_concurrency`), but neither caps a request body nor bounds how long it
takes to arrive; the edge (producer/api/edge.py) does both, after it has checked the
caller's key, for chunked bodies too (it counts what arrives, not what Content-Length
claims): 413 past the cap, 408 when the whole body has not arrived within the read timeout.

Nor does uvicorn bound how long a request head may take: a client that sends half a head
was held for ever, and past `limit_concurrency` such connections turn every other client
away with 503. `HeadTimeout` closes a connection whose head has not arrived within the
read timeout (counted from the connection, or from the previous answer on keep-alive).

HTTP is parsed by httptools (llhttp, in C) on uvloop's event loop rather than by uvicorn's
pure-Python h11 on asyncio's loop: less CPU a request (docs/benchmarks.md, `http_api`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from producer.core.log_json import install_server_logging


class HeadTimeout(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request head (`head_timeout` seconds)."""

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
        # A request under way (its head arrived) is the edge's business (its body), or a stream's.
        waiting_for_head = self.cycle is None or self.cycle.response_complete
        if waiting_for_head and not self.transport.is_closing():
            self.transport.close()


def head_timeout_protocol(seconds: float) -> type[HeadTimeout]:
    return type("HeadTimeout", (HeadTimeout,), {"head_timeout": seconds})


def listening_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """The API's listening socket on host:port (0: a free port), Nagle off for what it accepts;
    `reuse_port`: one of several on the same port, the kernel spreading connections over them.

    IPPROTO_TCP is named, not left 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    whose proto says TCP, and accepted sockets inherit the listener's. Left 0, the body of
    every answer waited for the client's delayed ACK of its head: about 45 ms a request on
    a keep-alive connection (GET /healthz took 48 ms; 1 ms with this).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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
    config = uvicorn.Config(app, http=head_timeout_protocol(read_timeout), loop="uvloop",
                            timeout_keep_alive=int(idle_timeout), limit_concurrency=limit_concurrency,
                            log_config=log_config, log_level="info", access_log=False, server_header=False)
    return uvicorn.Server(config)


def serve(app: Any, host: str, port: int, idle_timeout: float = 5.0, name: str = "songqueue api",
          read_timeout: float = 30.0, limit_concurrency: int = 500, path: str = "",
          also: tuple[tuple[str, str], ...] = (), workers: int = 1) -> int:
    """Run `app` on host:port (0: a free port); prints `NAME listening on URL` once bound
    (URL ends with `path`), then a line per (what, path) of `also` (the console, the docs).

    `workers` > 1: that many processes forked once the sockets listen, each accepting on a
    socket of its own with an event loop of its own (`limit_concurrency` is each one's); see
    `_supervise`. The sockets share the port (SO_REUSEPORT), so the kernel spreads new
    connections over the processes by their addresses. One shared socket would go to whichever
    process accepts first, and an idle event loop takes every waiting connection in one wakeup:
    a few keep-alive clients all landed on one process while the others stayed idle."""
    first = listening_socket(host, port, reuse_port=workers > 1)
    bound = first.getsockname()[1]
    # Every socket listens before the banner, so a client that reads it can connect at once.
    sockets = [first, *(listening_socket(host, bound, reuse_port=True) for _ in range(workers - 1))]
    print(f"{name} listening on http://{host}:{bound}{path}", flush=True)
    for what, where in also:
        print(f"  {what}: http://{host}:{bound}{where}", flush=True)
    if workers > 1:
        return _supervise(lambda sock: server(app, idle_timeout, read_timeout, limit_concurrency).run(sockets=[sock]),
                          sockets)
    server(app, idle_timeout, read_timeout, limit_concurrency).run(sockets=[first])
    return 0


def _supervise(run: Callable[[socket.socket], None], sockets: list[socket.socket]) -> int:
    """Fork a child per socket that `run(its socket)`s, and wait: SIGTERM or SIGINT here is passed to
    every child (each stops gracefully, as one process would); when any child exits, the others
    are stopped too and this returns the first one's status, so a crash is the supervisor's to
    see (systemd, Kubernetes restart the whole), never a silently smaller API.

    Forked before any request, so no Redis or broker connection is shared (redis-py and kombu
    open their own in each child on first use)."""
    children: list[int] = []
    stopping = (signal.SIGTERM, signal.SIGINT)
    # Held until the handler below is in place: a stop signal between two forks still reaches every child.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    for mine in sockets:
        pid = os.fork()
        if pid == 0:  # the child: serve until told to stop, and never return into the caller's code
            status = 1
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)
                for other in sockets:
                    if other is not mine:
                        other.close()  # held, a process's socket would keep its port's share after it died
                run(mine)
                status = 0
            finally:
                os._exit(status)
        children.append(pid)
    for sock in sockets:
        sock.close()  # the children hold them; this process serves nothing

    def stop(_signum: int = signal.SIGTERM, _frame: object = None) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)  # each child's first: a graceful stop

    for signum in stopping:
        signal.signal(signum, stop)
    signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    first: int | None = None
    alive = set(children)
    while alive:
        pid, status = os.wait()
        alive.discard(pid)
        if first is None:
            first = os.waitstatus_to_exitcode(status)
            stop()  # one gone: the others follow
    return 0 if not first or -first in stopping else abs(first)
