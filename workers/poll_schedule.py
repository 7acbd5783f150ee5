"""When to look again at a running upstream task, from what the provider's recent jobs took.

Pure functions: `learn` turns a History (producer/core/store/poll_history.py) into a
`Learned`, `next_poll_delay` picks the countdown. workers/poll_learning.py feeds them.

- Without history (fewer than `min_jobs` finished jobs of the provider's model): the rule
  of workers/retry_policy.next_poll_delay (linear extrapolation of progress, else half the
  time waited so far).
- With history: the next poll aims at the next quantile of the finish-time distribution
  not yet passed (`LADDER`: 25th, 50th, 75th, 90th, 97th, 99th percentile; no 10th: a
  poll there costs every job a call to save a few early ones some lag), so the
  polls fall where jobs actually finish: dense where many finish, none where none do.
  Past the last quantile, every (99th - 50th percentile) / 2.
- Progress is used only where it has proved informative for the provider: the relative
  error of its linear prediction, over at least `MIN_PROGRESS_JOBS` finished jobs, below
  `INFORMATIVE_ERROR`. Then a job reporting 0 < progress < 100 is also extrapolated as
  before, and the sooner of the two polls wins.
- "Not started" statuses (QUEUED, NOT_START, SUBMITTED, empty) carry no progress: the
  quantiles decide. The clock of the distribution always starts at the submit (a queue
  wait is part of what the jobs took), which keeps one clock for every relay.
Every countdown is clamped to [min_interval, max_interval].

What a finished job took (`finish_estimate`) is the midpoint of the gap between its last
two polls, narrowed to a second or two when the relay's own stamps say it.
"""

from __future__ import annotations

from dataclasses import dataclass

from producer.core.store.poll_history import History
from workers.retry_policy import next_poll_delay as without_history

LADDER = (0.25, 0.50, 0.75, 0.90, 0.97, 0.99)
INFORMATIVE_ERROR = 0.25
MIN_PROGRESS_JOBS = 10
NOT_STARTED = frozenset({"", "QUEUED", "NOT_START", "SUBMITTED", "PENDING"})


@dataclass(frozen=True)
class Learned:
    finish_at: tuple[float, ...]  # seconds from submit at each LADDER quantile, ascending
    progress_informative: bool


def quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolated quantile of ascending `ordered` (not empty)."""
    at = q * (len(ordered) - 1)
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def learn(history: History, min_jobs: int) -> Learned | None:
    """What `history` teaches, or None when it holds fewer than `min_jobs` durations."""
    if len(history.durations) < max(1, min_jobs):
        return None
    ordered = sorted(history.durations)
    errors = history.progress_errors
    informative = len(errors) >= MIN_PROGRESS_JOBS and sum(errors) / len(errors) < INFORMATIVE_ERROR
    return Learned(tuple(quantile(ordered, q) for q in LADDER), informative)


def next_poll_delay(elapsed: float, progress: int, status: str, min_interval: float, max_interval: float,
                    learned: Learned | None) -> float:
    """Seconds until the next poll of an upstream task `elapsed` seconds after its submit."""
    if learned is None:
        return without_history(elapsed, progress, min_interval, max_interval)
    running = status.upper() not in NOT_STARTED
    from_progress = None
    if learned.progress_informative and running and 0 < progress < 100:
        from_progress = without_history(elapsed, progress, min_interval, max_interval)
    # Half a minimum gap of slack: a poll that lands just before a quantile counts as at it.
    ahead = [t for t in learned.finish_at if t > elapsed + min_interval / 2]
    if ahead:
        delay = ahead[0] - elapsed
    else:
        # Past the 99th percentile: a late job of this model, not an unknown one; look again
        # at half the spread between the median and the 99th percentile (the old rule's
        # elapsed/2 would leave it waiting as long again as it has run).
        delay = (learned.finish_at[-1] - learned.finish_at[LADDER.index(0.50)]) / 2
    from_history = max(min_interval, min(max_interval, delay))
    # Informative progress may bring a poll sooner, never past a quantile where jobs of this
    # model finish: stepwise progress (25 % steps) predicts late by up to a step.
    return from_history if from_progress is None else min(from_progress, from_history)


# The upstream's stamps are whole seconds, each cut down: their difference is off by less than 1.
STAMP_SLACK = 1.0


def finish_estimate(running_at: float, seen_at: float, submitted_at: float, upstream_took: float | None) -> float:
    """When a job's upstream task finished, between the last poll that saw it running
    (`running_at`) and the one that saw it done (`seen_at`).

    The midpoint of that gap, unless the upstream says what the task took on its own clock
    (`finish_time - submit_time`): then the midpoint of where both agree, which is within a
    second where the gap may be a minute. A relay whose stamps disagree with the polls (a
    queue counted differently, a wrong clock rate) is not believed: the polls' gap stands."""
    low, high = running_at, seen_at
    if upstream_took is not None:
        said = submitted_at + upstream_took
        low, high = max(low, said - STAMP_SLACK), min(high, said + STAMP_SLACK)
        if low > high:
            low, high = running_at, seen_at
    return (low + high) / 2


def progress_error(predicted_finish: float | None, submitted_at: float, finished_at: float) -> float | None:
    """Relative error of a linear finish prediction: |predicted - actual| / generation time."""
    took = finished_at - submitted_at
    if predicted_finish is None or took <= 0:
        return None
    return abs(predicted_finish - finished_at) / took


def predicted_finish(now: float, submitted_at: float, progress: int) -> float | None:
    """Where progress says the task finishes, extrapolating linearly from the submit."""
    if not 0 < progress < 100:
        return None
    return submitted_at + (now - submitted_at) * 100 / progress
