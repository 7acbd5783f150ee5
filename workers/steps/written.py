"""Writes that record what was paid for: retried until Redis takes them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

log = logging.getLogger("songqueue.tasks")
T = TypeVar("T")

FIRST_PAUSE = 0.2
MAX_PAUSE = 5.0


def until_written(job_id: str, what: str, write: Callable[[], T]) -> T:
    """Run `write` (the record of `what`, e.g. "upstream task ID") until it does not raise
    a Redis error.

    A Redis blip right after a paid call must not lose what it returned (the upstream task
    id, or a synchronous provider's songs): this worker holds the only copy (besides the
    log line written before). Waiting here, however long, costs one worker slot; giving up
    would cost a paid song.
    """
    pause = FIRST_PAUSE
    while True:
        try:
            return write()
        except redis.RedisError as exc:
            log.error("job %s: could not record %s yet (%s); retrying in %.1fs",
                      job_id, what, exc, pause, extra={"job_id": job_id})
            time.sleep(pause)
            pause = min(MAX_PAUSE, pause * 2)
