"""When to look again: the poll schedule, and the one policy for transient faults.

Every step that meets a transient fault (an upstream 5xx or 429, a storage hiccup, Redis
unreachable) calls `retry_or_give_up`: it counts the fault,
gives up past the step's bound (`bound`), and otherwise retries the task by countdown
with exponential backoff, full jitter and the upstream's Retry-After.

The counter: consecutive transient faults travel with the message, as the task's
`faults` keyword argument. Why there, and not elsewhere:
- Celery's own `request.retries` counts every retry, and polls and limit waits are
  retries too (a countdown is how a step looks again without holding a worker slot), so
  it does not count faults.
- The job record is not there for every step: a playlist run has its own record, its
  start has none (Redis itself may be the fault), and a callback must never write the
  job's state. The message is always there, costs no extra write, and is per step by
  nature (each download of a job's assets is its own message).
A limit wait keeps the count (`wait_for_limit` retries with the message as it is);
progress resets it (`look_again`). A message the watchdog sends again after a crash
starts at 0: it is a new attempt, and it is still bounded.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from celery import Task
from celery.exceptions import Retry

from producer.core.settings import Settings

# The keyword argument that carries the count of consecutive transient faults.
FAULTS = "faults"

# How far towards the predicted finish the next poll aims. 0.5 (halfway) halves the
# calls' spacing each time; 0.9 lands one poll just short of the finish and the next just
# after it (measured in bench/poll_efficiency.py).
AIM = 0.9


@dataclass(frozen=True)
class Bound:
    """How many transient faults in a row a step tolerates, and its backoff."""

    faults: int  # the next one fails the step
    base: float  # first backoff, seconds
    cap: float  # longest backoff, seconds


def bound(settings: Settings, step: str) -> Bound:
    """The bound of `step` ("submit", "poll", "download", "finalize" or "playlist"; a callback
    follows SONGQUEUE_CALLBACK_SCHEDULE instead, workers/tasks/callback.py)."""
    return Bound(settings.max_transient_errors, settings.retry_base_delay, settings.retry_max_delay)


def retry_or_give_up(task: Task, settings: Settings, step: str, reason: str, *,
                     give_up: Callable[[str], object], retry_after: float | None = None,
                     not_after: float | None = None) -> None:
    """After a transient fault (`reason`): raise `task.retry(countdown=...)` with the fault
    counted, or, when the step's bound is spent (or the retry would land after the epoch
    time `not_after`), call `give_up(message)`, which ends the job (or run, or delivery),
    and return."""
    faults = int(task.request.kwargs.get(FAULTS, 0)) + 1
    limit = bound(settings, step)
    delay = backoff_delay(faults, limit.base, limit.cap, retry_after)
    if faults > limit.faults or (not_after is not None and time.time() + delay > not_after):
        give_up(f"gave up after {faults} attempts: {reason}")
        return
    raise _retry(task, faults, delay)


def look_again(task: Task, countdown: float) -> Retry:
    """The retry of a step that made progress: the fault count starts over."""
    return _retry(task, 0, countdown)


def retry_in(task: Task, faults: int, countdown: float) -> Retry:
    """The retry of a step on a schedule of its own, `faults` counted so far."""
    return _retry(task, faults, countdown)


def _retry(task: Task, faults: int, countdown: float) -> Retry:
    kwargs = {k: v for k, v in task.request.kwargs.items() if k != FAULTS}
    if faults:
        kwargs[FAULTS] = faults
    return task.retry(kwargs=kwargs, countdown=countdown)


def next_poll_delay(elapsed: float, progress: int, min_interval: float, max_interval: float) -> float:
    """Seconds until the next poll of an upstream task running for `elapsed` seconds.

    With progress to go on, aim just short of the finish it predicts (AIM of the way):
    one long wait, then a short one that lands just after the finish, so calls stay few
    and the lag stays near `min_interval` even when the prediction is a little off.
    Without it, wait about half the time waited so far.
    """
    if 0 < progress < 100:
        remaining = elapsed * (100 - progress) / progress
        delay = remaining * AIM
    else:
        delay = elapsed / 2
    return max(min_interval, min(max_interval, delay))


def backoff_delay(failures: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter after `failures` consecutive transient faults.

    An upstream's Retry-After is honoured (up to `cap`), never undercut.
    """
    ceiling = min(cap, base * 2 ** max(0, failures - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay
