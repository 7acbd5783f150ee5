"""Every (state, condition) the watchdog can find on an overdue job has a row in its table."""

from __future__ import annotations

import itertools

from producer.core.models.job_record import JobRecord, JobState
from workers.tasks import watchdog


def test_every_state_and_condition_has_a_branch() -> None:
    missing = [(state, c) for state, c in itertools.product(JobState, watchdog.Condition)
               if (state, c) not in watchdog.ACTIONS]
    assert missing == []


def test_a_live_job_is_never_just_forgotten() -> None:
    """A live state's row acts on the job: forgetting it (as for an ended job) would leave it stuck."""
    for (state, _), action in watchdog.ACTIONS.items():
        assert (action is watchdog._forget) == state.terminal, state


def test_the_condition_is_read_from_the_record() -> None:
    record = JobRecord(id="j1", provider="udio", model="udio32-v1.5", request={}, state=JobState.SUBMITTING)
    assert watchdog.condition(record) is watchdog.Condition.NO_TASK_ID
    record.upstream_task_id = "task-old"
    assert watchdog.condition(record) is watchdog.Condition.TASK_ID
    assert watchdog.ACTIONS[(JobState.SUBMITTING, watchdog.Condition.TASK_ID)] is watchdog._adopt_task


def test_a_parked_queued_job_has_its_own_row_and_its_deadline_comes_first() -> None:
    record = JobRecord(id="j2", provider="udio", model="udio32-v1.5", request={}, state=JobState.QUEUED,
                       parked="key_in_flight")
    assert watchdog.condition(record) is watchdog.Condition.PARKED
    assert watchdog.ACTIONS[(JobState.QUEUED, watchdog.Condition.PARKED)] is watchdog._check_parked
    record.cancel_after = 100.0
    assert watchdog.condition(record, now=200.0) is watchdog.Condition.PAST_DEADLINE
    # Only a QUEUED job counts as parked: a stale mark on another state is not read.
    record.cancel_after, record.state = None, JobState.SUBMITTING
    assert watchdog.condition(record) is watchdog.Condition.NO_TASK_ID
