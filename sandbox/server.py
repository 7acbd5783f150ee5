"""HTTP plumbing of the sandbox: routing table, socket I/O, command line.

Standard-library ``ThreadingHTTPServer`` with daemon threads: a slow or
stalled request (fault injection sleeps in its handler thread) never blocks
other clients or shutdown. Handlers are plain functions returning a
``wire.Response``; transport faults are carried out in ``_Handler._send``.

Adding an upstream (as MiniMax in ``minimax.py``) is one module of handlers
plus lines in ``ROUTES``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox import admin, audio, files, minimax, suno, udio
from sandbox.app import Sandbox
from sandbox.config import SandboxConfig
from sandbox.profiles import PROFILES
from sandbox.wire import Request, Response, error

Handler = Callable[..., Response]

# (method, path pattern matched against the raw path, handler). Named groups
# become keyword arguments of the handler.
ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", r"/udio/generate-proxy", partial(udio.submit, dialect="302ai")),
    ("POST", r"/udio/submit/music", partial(udio.submit, dialect="openai-hk")),
    ("GET", r"/udio/fetch/(?P<task_id>[^/]+)", udio.fetch),
    ("POST", r"/suno/submit/(?:music|MUSIC)", suno.submit),
    ("GET", r"/suno/fetch/(?P<task_id>[^/]+)", suno.fetch),
    ("POST", r"/suno/fetch", suno.fetch_many),
    ("GET", r"/suno/stream", suno.stream),
    ("GET", r"/files/(?P<task_id>[^/]+)/(?P<index>\d{1,3})/(?P<name>[^/]+)", files.song),
    ("GET", r"/images/(?P<task_id>[^/]+)/(?P<index>\d{1,3})", files.cover),
    ("POST", r"/minimaxi/v1/music_generation", minimax.generate),
    ("POST", r"/minimaxi/v1/music_upload", minimax.upload),
    ("GET", r"/minimax/audio/(?P<audio_id>[0-9a-f]{32})\.mp3", minimax.audio_file),
    ("GET", r"/_sandbox/config", admin.get_config),
    ("POST", r"/_sandbox/config", admin.set_config),
    ("GET", r"/_sandbox/stats", admin.stats),
    ("GET", r"/_sandbox/requests", admin.requests_log),
    ("POST", r"/_sandbox/reset", admin.reset),
    ("GET", r"/_sandbox/health", admin.health),
]
_COMPILED = [(method, re.compile(pattern), handler) for method, pattern, handler in ROUTES]

DEFAULT_PORT = 8808
DEFAULT_API_KEY = "sandbox-key"
API_KEY_ENV = "SONGQUEUE_SANDBOX_API_KEY"
_WRITE_CHUNK = 64 * 1024


def route(app: Sandbox, req: Request) -> Response:
    method = "GET" if req.method == "HEAD" else req.method
    path_matched = False
    for route_method, pattern, handler in _COMPILED:
        match = pattern.fullmatch(req.path)
        if match is None:
            continue
        path_matched = True
        if route_method == method:
            return handler(app, req, **match.groupdict())
    if path_matched:
        return error(405, "method_not_allowed", f"{req.method} is not allowed on {req.path}")
    return error(404, "not_found", f"no such endpoint: {req.path}")


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive: benchmarks poll thousands of tasks, and reconnecting
    # per request would measure the sandbox instead of the client.
    protocol_version = "HTTP/1.1"
    # The head and the body leave in two writes; with Nagle on, the body waited for the
    # client's delayed ACK of the head: ~40 ms a request on keep-alive, which a real
    # gateway's front server does not add (and which was most of a task run's slot time).
    disable_nagle_algorithm = True
    server: _HTTPServer

    def version_string(self) -> str:
        return "songqueue-sandbox/0.1"

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it so
        if self.server.log_requests:
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        app = self.server.app
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(error(400, "invalid_request", "unreadable request body"))
            return
        req = Request(
            method=self.command,
            raw_path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client=self.client_address[0],
        )
        if not req.path.startswith("/_sandbox/"):
            # Kept verbatim, secrets included: tests search this log for leaks.
            app.stats.record_request(
                {
                    "time": time.time(),
                    "method": req.method,
                    "path": req.raw_path,
                    "headers": dict(self.headers.items()),
                    "body": body,
                }
            )
        try:
            response = route(app, req)
        except Exception:  # noqa: BLE001 - a handler bug must not kill the connection thread silently
            traceback.print_exc(file=sys.stderr)
            response = error(500, "internal_error", "sandbox internal error")
        self._send(response)

    def _send(self, resp: Response) -> None:
        if resp.drop:
            self.close_connection = True  # nothing written: the client sees the connection end
            return
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(resp.content_length))
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command == "HEAD":
                return
            self._write_body(resp)
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client went away; nothing to answer

    def _write_body(self, resp: Response) -> None:
        if resp.trickle_interval_s is not None:
            self._trickle(resp)
            return
        rate = resp.throttle_bytes_per_s
        # Throttled bodies go out in ~10 writes a second so the rate is smooth.
        step = max(1, min(_WRITE_CHUNK, int(rate / 10))) if rate else _WRITE_CHUNK
        started = time.monotonic()
        sent = 0
        for chunk in resp.chunks() if resp.chunks is not None else (resp.body,):
            view = memoryview(chunk)
            while len(view):
                piece = view[:step]
                if resp.cut_after is not None and sent + len(piece) >= resp.cut_after:
                    self.wfile.write(piece[: resp.cut_after - sent])
                    self._cut(resp.cut_mode)
                    return
                if rate:
                    # Wait until this piece is due, so the last byte arrives at
                    # size/rate (sleeping after a write would let the client
                    # finish one step early).
                    ahead = started + (sent + len(piece)) / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                self.wfile.write(piece)
                sent += len(piece)
                view = view[len(piece) :]
        if resp.cut_after is not None:  # empty body asked to be cut: still cut
            self._cut(resp.cut_mode)
            return
        self.wfile.flush()
        if resp.on_complete is not None:
            resp.on_complete()

    def _trickle(self, resp: Response) -> None:
        """One byte, then a pause, until the body is out: headers arrived at once, the body
        did not (a relay streaming its answer from a slow backend)."""
        body = resp.body if resp.chunks is None else b"".join(resp.chunks())
        for i in range(len(body)):
            if i:
                time.sleep(resp.trickle_interval_s or 0)
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()
        if resp.on_complete is not None:
            resp.on_complete()

    def _cut(self, mode: str) -> None:
        """End the connection mid-body: FIN after a short body, or a TCP reset."""
        self.wfile.flush()
        self.close_connection = True
        if mode == "reset":
            # SO_LINGER 0 turns close() into an RST; rfile holds a reference to
            # the socket, so it must go first for close() to take effect now.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # bursts of thousands of clients in the scale benchmark

    def __init__(self, address: tuple[str, int], app: Sandbox, log_requests: bool) -> None:
        self.app = app
        self.log_requests = log_requests
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, OSError)):
            return  # clients hanging up mid-request are part of the job
        super().handle_error(request, client_address)


class SandboxServer:
    """A running sandbox; also usable in-process (``start()``) by tests and benchmarks."""

    def __init__(self, app: Sandbox, host: str = "127.0.0.1", port: int = 0, log_requests: bool = False) -> None:
        self.app = app
        self.httpd = _HTTPServer((host, port), app, log_requests)
        self.host = host
        self.port: int = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        if not app.public_url:
            public_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
            app.public_url = f"http://{public_host}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="sandbox-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str = DEFAULT_API_KEY,
    generation_time: float = 20.0,
    song_duration: float = 8.0,
    public_url: str = "",
    log_requests: bool = False,
) -> SandboxServer:
    """Start a sandbox in a background thread of this process; call ``.stop()`` after."""
    app = Sandbox(SandboxConfig(generation_time=generation_time, song_duration=song_duration), api_key, public_url)
    return SandboxServer(app, host, port, log_requests).start()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="songqueue sandbox",
        description="A local stand-in for songqueue's music gateways, with real MP3s: Udio in both relay dialects "
                    "(302.ai and openai-hk), Suno and MiniMax (music-01 uploads and the music-1.5+ models), with "
                    "their notify hooks and the faults of hostile relays. Also `python -m sandbox`.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8808; 0 picks a free port)")
    parser.add_argument("--api-key", default=None,
                        help=f"accepted API key (default ${API_KEY_ENV}, else {DEFAULT_API_KEY!r})")
    parser.add_argument("--generation-time", type=float, default=20.0, metavar="SECONDS",
                        help="time from submit to SUCCESS (default 20)")
    parser.add_argument("--song-duration", type=float, default=8.0, metavar="SECONDS",
                        help="length of generated songs (default 8)")
    parser.add_argument("--public-url", default="",
                        help="base URL written into song_path/image_path (default http://HOST:PORT)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed for the global fault rates and the profile's draws")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="mix every manner of a named world into every submit at its rates (sandbox/profiles.py)")
    parser.add_argument("--log-requests", action="store_true", help="print an access log line per request to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.generation_time < 0 or not 0.1 <= args.song_duration <= 3600:
        print("sandbox: --generation-time must be >= 0 and --song-duration between 0.1 and 3600", file=sys.stderr)
        return 2
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or DEFAULT_API_KEY
    config = SandboxConfig(generation_time=args.generation_time, song_duration=args.song_duration, seed=args.seed)
    app = Sandbox(config, api_key, args.public_url)
    if args.profile:
        app.update_config({"profile": args.profile})
    try:
        server = SandboxServer(app, args.host, args.port, args.log_requests)
    except OSError as exc:
        print(f"sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    # Encode the default songs now so the first fetch of a finished task is fast.
    threading.Thread(target=lambda: [audio.song_duration(config.song_duration, i) for i in (1, 2)],
                     name="sandbox-prewarm", daemon=True).start()
    server.start()
    print(f"sandbox listening on {server.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
