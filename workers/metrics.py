"""Counters the workers keep in Redis for `songqueue metrics`, a separate process.

Cheap on the hot path: one pipelined round trip of HINCRBYs per observation, on the job
store's connection, or one per task run for all of its observations (`batched`: every job
step runs in one). A metric that cannot be written is logged and dropped: it must never
fail a task (say, after a paid call whose answer still has to be recorded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import redis

from producer.core.store import keys
from producer.core.store.metric_schema import (
    CALLBACKS,
    DOWNLOADED_BYTES,
    LATENCY_BUCKETS,
    LIMIT_WAITS,
    POLL_BUCKETS,
    POLLS_PER_JOB,
    SEP,
    UPSTREAM_ERRORS,
    UPSTREAM_SECONDS,
    WATCHDOG_RESCHEDULES,
    bucket,
)
from workers import runtime
from workers.upstream.errors import UpstreamError

log = logging.getLogger("songqueue.metrics")

Op = tuple[str, str, str, float]  # (family, field, "int" | "float", amount)

# The observations of the task run in progress, when it batches them (`batched`).
_pending: ContextVar[list[Op] | None] = ContextVar("songqueue_metrics_pending", default=None)


@contextmanager
def batched() -> Iterator[None]:
    """Hold the observations made inside the block and write them in one round trip at its
    end, however it ends (a retry, a fault)."""
    pending: list[Op] = []
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
        if pending:
            _flush(pending)


def _write(*ops: Op) -> None:
    pending = _pending.get()
    if pending is not None:
        pending.extend(ops)
    else:
        _flush(list(ops))


def _flush(ops: list[Op]) -> None:
    store = runtime.store()
    try:
        pipe = store.redis.pipeline(transaction=False)
        for family, field, kind, amount in ops:
            key = keys.metric(store.prefix, family)
            if kind == "int":
                pipe.hincrby(key, field, int(amount))
            else:
                pipe.hincrbyfloat(key, field, amount)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("metrics not recorded: %s", exc)


@contextmanager
def upstream_call(provider: str, call: str) -> Iterator[None]:
    """Time one upstream call ("submit", "fetch", "generate"); count it as an error by its
    code when it raises."""
    started = time.perf_counter()
    code: str | None = None
    try:
        yield
    except UpstreamError as exc:
        code = exc.code
        raise
    except Exception:
        code = "internal_error"
        raise
    finally:
        seconds = time.perf_counter() - started
        labels = f"{provider}{SEP}{call}"
        ops = [(UPSTREAM_SECONDS, f"{labels}{SEP}{bucket(seconds, LATENCY_BUCKETS)}", "int", 1),
               (UPSTREAM_SECONDS, f"{labels}{SEP}sum", "float", seconds)]
        if code is not None:
            ops.append((UPSTREAM_ERRORS, f"{labels}{SEP}{code}", "int", 1))
        _write(*ops)


def polls_per_job(provider: str, polls: int) -> None:
    """Observed once per job, when its polling ends (whatever the outcome)."""
    _write((POLLS_PER_JOB, f"{provider}{SEP}{bucket(polls, POLL_BUCKETS)}", "int", 1),
           (POLLS_PER_JOB, f"{provider}{SEP}sum", "float", polls))


def downloaded(provider: str, asset: str, size: int) -> None:
    _write((DOWNLOADED_BYTES, f"{provider}{SEP}{asset}", "int", size))


def limit_wait(provider: str, limit: str) -> None:
    _write((LIMIT_WAITS, f"{provider}{SEP}{limit}", "int", 1))


def callback(event: str, outcome: str) -> None:
    """A callback event's end: "delivered", "failed" when its deliveries were given up, or "skipped" when its
    receiver's origin is disabled."""
    _write((CALLBACKS, f"{event}{SEP}{outcome}", "int", 1))


def watchdog_rescheduled(state: str) -> None:
    _write((WATCHDOG_RESCHEDULES, state, "int", 1))
