"""A job's own deadline: what it accepts, and what the record and the watchdog make of it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from producer.core import deadlines
from producer.core.models.job_record import JobRecord, JobState
from workers.tasks import watchdog


@pytest.mark.parametrize(("given", "seconds"), [
    (90, 90.0), (1.5, 1.5), ("90", 90.0), ("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0), ("2h", 7200.0),
    ("1h0m5s", 3605.0),
])
def test_seconds_durations_are_read(given, seconds) -> None:
    assert deadlines.seconds_from(given) == pytest.approx(seconds)


def test_a_time_with_a_zone_is_read_as_seconds_from_now() -> None:
    at = datetime.now(UTC) + timedelta(minutes=5)
    assert deadlines.seconds_from(at.isoformat().replace("+00:00", "Z")) == pytest.approx(300, abs=2)


@pytest.mark.parametrize(("given", "says"), [
    (0, "in the future"), (-5, "in the future"), ("soon", "seconds (90)"), ("", "seconds (90)"),
    ("2026-01-01T00:00:00", "needs its zone"), ("2000-01-01T00:00:00Z", "in the future"),
    (True, "seconds (90)"), (10**9, "within 30 days"), ("5ms", "seconds (90)"),
])
def test_bad_deadlines_are_refused_saying_why(given, says) -> None:
    with pytest.raises(ValueError, match=r"^.*" + says.replace("(", r"\(").replace(")", r"\)")):
        deadlines.seconds_from(given)


def test_polling_gives_up_at_the_sooner_of_the_two_deadlines() -> None:
    assert deadlines.first(100.0, None) == 100.0
    assert deadlines.first(100.0, 50.0) == 50.0
    assert deadlines.first(100.0, 500.0) == 100.0


def test_a_job_past_its_deadline_is_a_condition_of_its_own() -> None:
    record = JobRecord(id="j1", provider="udio", model="udio32-v1.5", request={}, cancel_after=time.time() - 1)
    assert watchdog.condition(record) is watchdog.Condition.PAST_DEADLINE
    assert watchdog.ACTIONS[(JobState.QUEUED, watchdog.Condition.PAST_DEADLINE)] is watchdog._cancel_before_submit
    # Submitted: the call is paid; the deadline times it out, it cannot cancel it.
    assert watchdog.ACTIONS[(JobState.GENERATING, watchdog.Condition.PAST_DEADLINE)] is watchdog._time_out_submitted
    record.cancel_after = time.time() + 60
    assert watchdog.condition(record) is watchdog.Condition.NO_TASK_ID


def test_the_errors_say_whether_the_job_was_charged() -> None:
    record = JobRecord(id="j1", provider="suno", model="chirp-v4", request={}, cancel_after=0.0, cost=0.25)
    code, message = deadlines.before_submit(record)
    assert code == "deadline_before_submit" and "nothing was charged" in message
    code, message = deadlines.after_submit(record)
    assert code == "deadline_after_submit" and "charged (0.25)" in message
