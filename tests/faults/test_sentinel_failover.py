"""The Sentinel failover scenario, small and fast: the master SIGKILLed under 3 jobs in flight."""

from __future__ import annotations

import pytest

from tests.faults.fault_scenarios import FAST
from tests.faults.harness import SANDBOX_KEY
from tests.faults.sentinel_failover import run

pytestmark = pytest.mark.integration


@pytest.fixture
def sandbox(tmp_path):
    import stack

    proc, url = stack.start_sandbox("--api-key", SANDBOX_KEY, "--generation-time", "2", "--song-duration", "2",
                                    log=tmp_path / "sandbox.log")
    yield url
    stack.stop(proc)


def test_master_killed_under_jobs_in_flight_fails_over_and_every_job_ends_once(sandbox, tmp_path):
    result = run(tmp_path, sandbox, jobs=3, settings=FAST, timeout=120)

    # The fault landed: the master died of SIGKILL, and the sentinels promoted the replica.
    assert result.master_exit == -9
    assert result.failover_s > 0
    # Work went on after the failover, on the new master, and every job ended exactly once.
    assert result.first_change_s is not None
    assert result.all_ended_s is not None, result.details
    assert result.lost == 0, result.details
    assert result.submitted_twice == 0
    assert result.succeeded == result.jobs, result.details
