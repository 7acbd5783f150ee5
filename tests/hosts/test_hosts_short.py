"""The many-hosts matrix, short: two faults on hosts of their own, 20 jobs each, safe settings.

A worker host killed whole (and brought back) and a worker host cut from the gateway (and
healed), each under 20 jobs in flight, with the Redis trio at `appendfsync always` and
SONGQUEUE_REDIS_MIN_REPLICAS=1. Needs root and iproute2 (network namespaces): skipped with
the reason otherwise, failed under CI=true.
"""

from __future__ import annotations

import pytest

from tests.hosts.checker import Verdict
from tests.hosts.cluster import SAFE
from tests.hosts.matrix import run_cell
from tests.hosts.nemesis import FAULTS
from tests.hosts.netns import missing_capability
from tests.support.prerequisites import missing

pytestmark = pytest.mark.integration
JOBS = 20


@pytest.fixture(autouse=True)
def namespaces() -> None:
    why = missing_capability()
    if why:
        missing(why)


def _no_job_lost_or_paid_twice(verdict: Verdict | None) -> Verdict:
    assert verdict is not None
    assert verdict.jobs == JOBS
    assert verdict.lost == 0
    assert verdict.stuck == 0
    assert verdict.paid_twice == 0
    assert verdict.forgotten == 0
    assert verdict.ok + verdict.failed == JOBS
    # A job may fail only as the rules say for a paid call cut off mid-way: never silently.
    assert set(verdict.errors) <= {"submit_uncertain"}, verdict.errors
    assert verdict.broken == []
    # The fault caught work in flight (whether it ends before or after the heal is timing).
    assert verdict.caught > 0
    return verdict


def test_a_worker_host_killed_whole_loses_and_double_pays_nothing(tmp_path):
    cell = run_cell(tmp_path, FAULTS["worker host killed"], SAFE, JOBS, hold_s=5, bound=120)

    # The fault landed: every process of w1 (worker and pool) was SIGKILLed and the
    # namespace emptied (strike raises otherwise); then the host came back.
    assert "SIGKILLed" in cell.landed and "now empty" in cell.landed
    assert "worker ready" in cell.healed
    _no_job_lost_or_paid_twice(cell.verdict)
    assert cell.notes == []  # no namespace, veth or bridge of the run left behind


def test_a_worker_host_cut_from_the_gateway_loses_and_double_pays_nothing(tmp_path):
    cell = run_cell(tmp_path, FAULTS["worker host cut from the gateway"], SAFE, JOBS, hold_s=5, bound=120)

    # The partition landed (a connect from w1 to the gateway that worked before timed out
    # during the cut) and healed (it connects again).
    assert "timed out" in cell.landed
    assert "reaches gw" in cell.healed
    _no_job_lost_or_paid_twice(cell.verdict)
    assert cell.notes == []
