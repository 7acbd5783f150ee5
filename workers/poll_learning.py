"""The poll schedule's memory: each finished job teaches it, each poll reads it (cached).

Kept in Redis for the whole fleet (producer/core/store/poll_history.py); read at most once
every `CACHE_SECONDS` per worker process and (provider, model), so a poll costs no extra
round trip in the common case (a job's end refreshes it at once only while nothing is learned yet).
"""

from __future__ import annotations

import time

from producer.core.models.job_record import JobRecord
from producer.core.settings import Settings
from producer.core.store import poll_history
from workers import runtime
from workers.poll_schedule import Learned, finish_estimate, learn, next_poll_delay, progress_error

CACHE_SECONDS = 5.0

_cache: dict[tuple[str, str], tuple[float, Learned | None]] = {}


def learned(provider: str, model: str) -> Learned | None:
    """What the provider's model's finished jobs taught, or None (too few, or learning off)."""
    settings = runtime.settings()
    if not settings.poll_learning:
        return None
    now = time.monotonic()
    hit = _cache.get((provider, model))
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    store = runtime.store()
    found = learn(poll_history.read(store.redis, store.prefix, provider, model), settings.poll_learning_min_jobs)
    _cache[(provider, model)] = (now, found)
    return found


def first_poll(settings: Settings, provider: str, model: str) -> float:
    """Seconds from submit to a job's first poll: `POLL_INITIAL_DELAY`, or with history the
    25th percentile of what the model's jobs took (no call before any job has finished).

    Not raised to `POLL_MIN_INTERVAL`: that spaces polls of one task, and the first poll has
    none before it. Raised, a model whose jobs finish at once (an instant relay, MiniMax-like
    answers) waited the whole minimum for each first look: the pipeline benchmark fell from
    38 to 8 jobs/s when history came in."""
    initial, least, most = settings.poll_schedule(provider)
    taught = learned(provider, model)
    if taught is None:
        return initial
    return next_poll_delay(0.0, 0, "", 0.0, most, taught)


def finished(record: JobRecord, seen_at: float, upstream_took: float | None = None) -> None:
    """Teach the schedule a job whose upstream was seen finished at `seen_at`.

    The finish lies between the last poll that saw the task running and this one, narrowed
    by what the upstream says the task took when it says (`finish_estimate`), so the
    learned times are not late by a whole poll gap.
    """
    if not runtime.settings().poll_learning or record.submitted_at is None:
        return
    since = record.polled_at if record.polled_at is not None else record.submitted_at
    finish = finish_estimate(max(since, record.submitted_at), seen_at, record.submitted_at, upstream_took)
    store = runtime.store()
    poll_history.record(store.redis, store.prefix, record.provider, record.model, finish - record.submitted_at,
                        progress_error(record.predicted_finish, record.submitted_at, finish))
    # Until the model has learned anything, this process reads what it taught at once (the
    # job that crosses POLL_LEARNING_MIN_JOBS counts from the next poll). Once learned, one
    # more job barely moves the quantiles: the cache's next refresh takes it up, rather
    # than a read of both lists and a new estimate at every job's end.
    hit = _cache.get((record.provider, record.model))
    if hit is None or hit[1] is None:
        _cache.pop((record.provider, record.model), None)
