"""The benchmark harness's own arithmetic and log parsing (no servers, no timing)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from bench import harness  # noqa: E402
from producer.core.models.job_record import JobRecord, JobState, Transition  # noqa: E402

LOG = """\
[2026-01-01 00:00:00,001: INFO/MainProcess] Task songqueue.poll[6f1c0c2e-1111-4a2b-9c3d-000000000001] received
[2026-01-01 00:00:00,050: INFO/ForkPoolWorker-1] Task songqueue.poll[6f1c0c2e-1111-4a2b-9c3d-000000000001] retry: Retry in 2.0s
[2026-01-01 00:00:02,100: INFO/ForkPoolWorker-2] Task songqueue.download[6f1c0c2e-1111-4a2b-9c3d-000000000002] succeeded in 1.25s: None
[2026-01-01 00:00:02,200: INFO/ForkPoolWorker-2] Task bench.noop[6f1c0c2e-1111-4a2b-9c3d-000000000003] succeeded in 4.1e-05s: None
"""


def test_task_runs_counts_every_run_with_its_runtime(tmp_path):
    log = tmp_path / "w.log"
    log.write_text(LOG)
    assert harness.task_runs(log) == [
        ("songqueue.poll", "retry", None),
        ("songqueue.download", "succeeded", 1.25),
        ("bench.noop", "succeeded", 4.1e-05),
    ]


def test_table_is_markdown():
    assert harness.table(["a", "b"], [[1, "x"]]).splitlines() == ["| a | b |", "|---|---|", "| 1 | x |"]


def test_makespan_and_latencies_come_from_the_records():
    def job(created: float, done: float | None) -> JobRecord:
        record = JobRecord(id=f"j{created}", provider="udio", model="m", request={}, created_at=created)
        record.transitions = [Transition(state=JobState.QUEUED, at=created)]
        if done is not None:
            record.transitions.append(Transition(state=JobState.SUCCEEDED, at=done))
        return record

    records = [job(10.0, 15.0), job(11.0, 20.0), job(12.0, None)]
    assert harness.makespan(records) == 10.0
    assert harness.latencies(records) == [5.0, 9.0]
    assert harness.quantile([1, 2, 3, 4, 5], 0.9) == 5
    assert harness.median([3, 1, 2]) == 2
