"""Named crash points: where a side effect and its record meet. Test-only.

`SONGQUEUE_FAULT_POINT=<point>:<action>` makes the first worker that reaches `<point>`
(across the fleet: a Redis key records the hit, with the job and the time) do `<action>`
there, once: `kill` (SIGKILL the process running the task: a pool child dies, its worker
lives on and requeues the message), `kill_worker` (SIGKILL the whole worker, its main
process and every pool child, as a machine that dies), `redis_error` (raise a Redis
connection error), `storage_error` (disk full, as the object store reports it: its
transient `storage_unavailable`) or `oserror` (a bare disk-full OSError, as a write outside
the store raises it, e.g. a download's spool file). Unset, `hit` costs one dictionary
lookup. `make faults` runs every point in POINTS with real workers.

It crashes workers on purpose, so it acts only beside the explicit test switch
`SONGQUEUE_TEST_FAULTS=1`: a worker that finds the point set without the switch refuses to
start and says why (`refuse_unarmed`), and `songqueue doctor` reports it.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import time

import redis

from producer.core.unknown_settings import FAULT_POINT, TEST_FAULTS
from workers import runtime
from workers.storage.file import file_error

log = logging.getLogger("songqueue.fault_points")

ENV, SWITCH = FAULT_POINT, TEST_FAULTS
ACTIONS = ("kill", "kill_worker", "redis_error", "storage_error", "oserror")
# The worker's main process, recorded when it starts: what `kill_worker` takes down with it.
_main_pid: int | None = None
POINTS = (
    "submit.after_admit", "submit.before_call", "submit.after_call", "submit.after_record",
    "poll.before_fetch", "poll.after_fetch", "poll.after_retry",
    "download.before_put", "download.after_put",
    "finalize.before_put", "finalize.after_put", "playlist.before_put",
    "send.before", "send.after",
    "callback.before_post", "callback.after_post",
)


def hit_key(prefix: str, point: str) -> str:
    """Set once a worker acted at `point`: "<action>|<job id>|<unix time>"."""
    return f"{prefix}:faultpoint:{point}"


def armed_without_switch(environ: dict[str, str] | None = None) -> str | None:
    """Why a process must not run (the point set without the test switch), or None."""
    env = os.environ if environ is None else environ
    if env.get(ENV) and env.get(SWITCH) != "1":
        return (f"{ENV}={env[ENV]} would crash this worker on purpose; it is for the fault tests only and acts "
                f"only with {SWITCH}=1 beside it. Unset {ENV} (or set {SWITCH}=1 in a test)")
    return None


def refuse_unarmed() -> None:
    """At worker start: refuse to run with a crash point armed by mistake."""
    global _main_pid
    reason = armed_without_switch()
    if reason:
        log.critical("refusing to start: %s", reason)
        raise SystemExit(f"songqueue worker: {reason}")
    _main_pid = os.getpid()


def _current_job() -> str:
    from celery import current_task

    args = getattr(getattr(current_task, "request", None), "args", None) or []
    return str(args[0]) if args else ""


def _kill_worker() -> None:
    """SIGKILL the whole worker: its process group when the main process leads one (as a
    worker started in its own session does), else the main process and this one."""
    main = _main_pid or os.getppid()
    if os.getpgid(0) == main:
        os.killpg(main, signal.SIGKILL)
    os.kill(main, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def hit(point: str) -> None:
    """Act here if SONGQUEUE_FAULT_POINT names this point and nobody acted on it yet."""
    spec = os.environ.get(ENV)
    if not spec or spec.partition(":")[0] != point or os.environ.get(SWITCH) != "1":
        return
    action = spec.partition(":")[2] or "kill"
    store = runtime.store()
    if not store.redis.set(hit_key(store.prefix, point), f"{action}|{_current_job()}|{time.time()}", nx=True):
        return  # acted once already
    log.warning("fault point %s: %s", point, action)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "kill_worker":
        _kill_worker()
    if action == "redis_error":
        raise redis.ConnectionError(f"injected at {point}")
    disk_full = OSError(errno.ENOSPC, f"No space left on device (injected at {point})")
    if action == "storage_error":
        raise file_error(disk_full, f"injected at {point}") from disk_full
    if action == "oserror":
        raise disk_full
