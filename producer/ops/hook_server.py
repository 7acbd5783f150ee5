"""The notify hook: the endpoint a gateway calls when one of its tasks changes status.

`songqueue hooks --port N` serves `POST /hooks/{provider}` (e.g. `/hooks/udio`); point
SONGQUEUE_NOTIFY_HOOK_URL at it and the Udio provider sends that URL with every submit.
The gateways POST the task object of their fetch answer (`{"task_id": ..., "status": ...}`;
an enveloped `{"data": {...}}` is accepted too).

The body is never trusted for state: it only names the upstream task. The job is found
through the index the submit step writes (producer.store.keys.upstream_task), and gets one
*one-shot* poll (`songqueue.poll` with `once=True`) under its current fencing token: the
poll fetches the upstream itself, merges what it sees, and never schedules another poll,
so the countdown chain stays the only chain. So a forged or replayed call can do no more
than cause one extra poll, and at most one per job per SONGQUEUE_NOTIFY_MIN_INTERVAL (a
Redis SET NX key). Calls that report a known running status are acknowledged without a
poll: only the end of a task is worth getting early. Polling stays the fallback for hooks
that never come.

Like the rest of producer/, this sends tasks by name and never imports worker code.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kombu.exceptions
import redis
from celery import Celery

from producer import task_names
from producer.client.celery_config import celery_config
from producer.models.job_record import WAITING_STATES
from producer.settings import POLLED_PROVIDERS, Settings
from producer.store.job_store import JobStore

log = logging.getLogger("songqueue.hooks")

MAX_BODY_BYTES = 1024 * 1024
# Statuses the gateways of this family report while a task runs (docs/upstream-contract.md, "Udio through an aggregator gateway").
# Anything else, a missing status included, may be the end and earns a poll.
RUNNING_STATUSES = frozenset({"NOT_START", "SUBMITTED", "QUEUED", "IN_PROGRESS"})
_HOOK_PATH = re.compile(r"/hooks/(?P<provider>[a-z0-9_]+)/?")


class Hooks:
    """What a hook call does, apart from HTTP: (status code, JSON answer) for a body."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = JobStore.from_url(settings.job_store_url, settings.key_prefix, settings.job_retention)
        self.celery = Celery("songqueue-hooks")
        self.celery.conf.update(celery_config(settings))

    def handle(self, provider: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if provider not in POLLED_PROVIDERS:
            return 404, {"error": f"no hook for provider {provider!r}"}
        try:
            task = _task_object(json.loads(body))
        except (ValueError, UnicodeDecodeError):
            return 400, {"error": "the body must be a JSON task object with a task_id"}
        task_id = str(task.get("task_id") or "").strip()
        if not task_id:
            return 400, {"error": "the body must be a JSON task object with a task_id"}
        job_id = self.store.job_for_upstream_task(provider, task_id)
        record = self.store.get(job_id) if job_id else None
        if record is None or record.upstream_task_id != task_id:
            log.info("hook for unknown %s task %s", provider, task_id[:64])
            return 404, {"error": "unknown task"}
        if record.state not in WAITING_STATES:
            return 200, {"result": "ignored", "reason": f"job is {record.state.value}"}
        if str(task.get("status") or "").upper() in RUNNING_STATUSES:
            return 200, {"result": "ignored", "reason": "still running; polling covers it"}
        if not self.store.claim_hook_poll(record.id, self.settings.notify_min_interval):
            return 200, {"result": "throttled"}
        self.celery.send_task(task_names.POLL, args=[record.id, record.token], kwargs={"once": True},
                              argsrepr=f"job={record.id} token={record.token} once (notify hook)")
        log.info("job %s: notify hook for task %s: one poll sent", record.id, task_id)
        return 202, {"result": "poll sent"}


def _task_object(payload: Any) -> dict[str, Any]:
    """The task object, bare or inside a fetch-style envelope ({"code", "data": {...}})."""
    if isinstance(payload, dict) and "task_id" not in payload and isinstance(payload.get("data"), dict):
        payload = payload["data"]
    if not isinstance(payload, dict):
        raise ValueError("not an object")
    return payload


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Socket timeout of every read and write: a client that stops sending is cut off.
    timeout = 10

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, {"ok": True})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        match = _HOOK_PATH.fullmatch(self.path.split("?", 1)[0])
        if match is None:
            self._answer(404, {"error": "not found"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY_BYTES:
            self._answer(413 if length > MAX_BODY_BYTES else 411,
                         {"error": f"a Content-Length of 1..{MAX_BODY_BYTES} bytes is required"})
            return
        body = self.rfile.read(length)
        try:
            status, answer = self.server.hooks.handle(match.group("provider"), body)
        except (redis.RedisError, kombu.exceptions.OperationalError, ConnectionError) as exc:
            log.warning("hook could not be handled: %s", exc)
            status, answer = 503, {"error": "songqueue is unavailable; try again"}
        self._answer(status, answer)

    def _answer(self, status: int, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it so
        log.debug("%s " + format, self.client_address[0], *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], hooks: Hooks) -> None:
        self.hooks = hooks
        super().__init__(address, _Handler)


def serve(settings: Settings, host: str, port: int) -> int:
    """Serve until SIGTERM or SIGINT; prints `hooks listening on URL` once ready."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        server = _Server((host, port), Hooks(settings))
    except OSError as exc:
        print(f"songqueue hooks: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    if not settings.notify_hook_url:
        log.warning("SONGQUEUE_NOTIFY_HOOK_URL is empty: no gateway is told to call this server")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    print(f"hooks listening on http://{host}:{server.server_address[1]}", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0
