"""Replay: run a FAILED or TIMED_OUT job again from the start, on an operator's explicit word.

`songqueue retry JOB_ID` (SongQueue.retry) is the only way a job is ever submitted upstream
a second time by hand: a new paid call. The record goes back to QUEUED with what the earlier
run reached kept in `history` (its upstream task id, its error, when it ended), a new fencing
token so any message of the earlier run still about does nothing, and a fresh submit.
"""

from __future__ import annotations

import time

from producer.core.models.job_record import JobRecord, PreviousRun


class NotReplayable(ValueError):
    """The job is in a state that cannot be replayed (it is live, succeeded or cancelled)."""


def refusal(record: JobRecord) -> NotReplayable:
    return NotReplayable(f"job {record.id} is {record.state.value}: only a FAILED or TIMED_OUT job can be retried")


def reset_for_replay(record: JobRecord) -> None:
    """Keep the run that ended in `history`; clear everything a new run fills in again."""
    now = time.time()
    ended_at = record.transitions[-1].at if record.transitions else record.updated_at
    record.history.append(PreviousRun(state=record.state, upstream_task_id=record.upstream_task_id, error=record.error,
                                      submitted_at=record.submitted_at, ended_at=ended_at, retried_at=now))
    record.upstream_task_id = None
    record.error = None
    record.progress = 0
    record.songs = []
    record.manifest = None
    record.submit_intent_at = None
    record.submit_intent_id = None  # `charged_calls` stays: `cost` keeps adding up
    record.submitted_at = None
    record.deadline_at = None
    record.cancel_after = None  # the caller's deadline was for the run that ended
    # Per-run counters (download deliveries among them) start again; `cost` keeps adding up.
    record.attempts = {}
    record.waiting_for = None
    record.token += 1
