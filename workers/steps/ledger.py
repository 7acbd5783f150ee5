"""The ledger of paid calls: each charged to its job once, and what it returned written
until Redis takes it.

Several writes may charge the same call: the run that made it (its answer, or a fault
after which it may have been billed), the end of a job whose submit became uncertain (a
redelivered copy of the message, or the watchdog), a late answer kept on a job that moved
on, and a write retried because Redis dropped the connection after taking it. So each
charge names the call by its intent's id (`JobRecord.submit_intent_id`, written with the
intent before the call) and is added only if the record does not list it in
`charged_calls` yet, in the same compare-and-set as the rest of the write.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import redis

from producer.core.models.job_record import JobRecord


def new_intent() -> str:
    return uuid.uuid4().hex[:16]


def charge(record: JobRecord, intent: str | None, price: float) -> bool:
    """Add `price` for the call made under `intent`, unless it is charged already; True if added.

    `intent` None: a record written before intents had ids; charged as before (always).
    """
    if price <= 0:
        return False
    if intent is not None:
        if intent in record.charged_calls:
            return False
        record.charged_calls.append(intent)
    record.cost += price
    return True


def charge_current(record: JobRecord, price: float) -> bool:
    """Charge the call of the intent the record holds (a submit whose outcome is unknown)."""
    return charge(record, record.submit_intent_id, price)


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
