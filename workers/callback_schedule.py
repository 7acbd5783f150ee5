"""When a failed callback delivery is tried again: SONGQUEUE_CALLBACK_SCHEDULE, and the attempt log it bounds."""

from __future__ import annotations

from producer.core.callbacks import PROGRESS
from producer.core.models.job_record import CallbackAttempt


def next_delay(delays: tuple[float, ...], attempt: int, retry_after: float | None = None) -> float | None:
    """Seconds from failed delivery `attempt` (1-based) to the next one; None once the schedule is spent.

    A receiver's Retry-After is honoured when it asks for longer, up to the schedule's longest wait.
    """
    if attempt >= len(delays):
        return None
    delay = delays[attempt]
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(delays)))
    return delay


def keep(attempts: list[CallbackAttempt], new: CallbackAttempt, delays: tuple[float, ...]) -> list[CallbackAttempt]:
    """The job's attempt log with `new` added.

    Kept in full for every event but progress: each event has at most len(delays) scheduled
    attempts (plus the replays an operator asks for), and a job has few ends, so the log is
    bounded by the schedule times the events and leaves Redis with the record at retention.
    Progress events are the exception: a long job may send hundreds, and each supersedes the
    one before (a receiver wants the latest progress, not the history), so only the attempts
    of the last len(delays) progress deliveries are kept.
    """
    log = [*attempts, new]
    progress = [a.delivery for a in log if a.event == PROGRESS]
    recent = set(list(dict.fromkeys(reversed(progress)))[:len(delays)])  # the latest progress deliveries
    return [a for a in log if a.event != PROGRESS or a.delivery in recent]
