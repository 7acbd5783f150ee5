"""Named crash points: where a side effect and its record meet. Test-only.

`SONGQUEUE_FAULT_POINT=<point>:<action>` makes the first worker that reaches `<point>`
(across the fleet: a Redis key records the hit) do `<action>` there, once:
`kill` (SIGKILL its own process, as a crash would), `redis_error` (raise a Redis
connection error) or `storage_error` (raise a full disk's error as the storage reports
it: `storage_unavailable`, transient). Unset, `hit` costs one
dictionary lookup. `make faults` runs every point in POINTS with real workers.
"""

from __future__ import annotations

import errno
import logging
import os
import signal

import redis

from workers import runtime
from workers.storage.file import file_error

log = logging.getLogger("songqueue.fault_points")

ENV = "SONGQUEUE_FAULT_POINT"
ACTIONS = ("kill", "redis_error", "storage_error")
POINTS = (
    "submit.after_admit", "submit.before_call", "submit.after_call", "submit.after_record",
    "poll.before_fetch", "poll.after_fetch", "poll.after_retry",
    "download.before_put", "download.after_put",
    "finalize.before_put", "finalize.after_put", "playlist.before_put",
    "send.before", "send.after",
    "callback.before_post", "callback.after_post",
)


def hit_key(prefix: str, point: str) -> str:
    return f"{prefix}:faultpoint:{point}"


def hit(point: str) -> None:
    """Act here if SONGQUEUE_FAULT_POINT names this point and nobody acted on it yet."""
    spec = os.environ.get(ENV)
    if not spec or spec.partition(":")[0] != point:
        return
    action = spec.partition(":")[2] or "kill"
    store = runtime.store()
    if not store.redis.set(hit_key(store.prefix, point), action, nx=True):
        return  # acted once already
    log.warning("fault point %s: %s", point, action)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "redis_error":
        raise redis.ConnectionError(f"injected at {point}")
    if action == "storage_error":
        # As the storage reports a full disk (workers/storage/file.py): sorted, transient.
        raise file_error(OSError(errno.ENOSPC, "No space left on device"), f"injected at {point}")
