"""Step bounds: deaths count as deliveries, transient retries do not; all runs are bounded."""

from __future__ import annotations

from producer.core.models.job_record import JobRecord
from producer.core.settings import Settings
from workers.steps.step_runs import spent

SETTINGS = Settings(max_deliveries=5, max_transient_errors=8)


def _record(runs: int, faults: int) -> JobRecord:
    record = JobRecord(id="j1", provider="udio", model="udio32-v1.5", request={"prompt": "x"})
    record.attempts = {"download:1:audio": runs, "download:1:audio:faults": faults}
    return record


def _spent(runs: int, faults: int):
    return spent(_record(runs, faults), "download:1:audio", SETTINGS, "download", "song 1 audio")


def test_transient_retries_are_not_deliveries() -> None:
    # Seven runs, six ended by a transient fault: one delivery in flight, not poison.
    assert _spent(7, 6) is None


def test_runs_that_died_are_poison() -> None:
    result = _spent(6, 0)
    assert result is not None and result.code == "download_poison"
    assert "started 6 times" in result.message and "SONGQUEUE_MAX_DELIVERIES=5" in result.message


def test_all_runs_together_are_bounded() -> None:
    assert _spent(13, 12) is None
    result = _spent(14, 13)
    assert result is not None and result.code == "download_exhausted" and "14 runs" in result.message
