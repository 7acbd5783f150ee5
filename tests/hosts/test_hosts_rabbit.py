"""One RabbitMQ cell on hosts of their own: the node that leads the `poll` quorum queue killed
(and brought back) under 20 jobs in flight, quorum queues and pause_minority.

Not part of `make test`: three Erlang nodes take most of a minute to form a cluster on two cores,
and `make test` has no minute to spare. `make hosts` runs it (HOSTS_RABBIT_TEST=1)
before the matrix; without that variable it skips. Then it needs root, iproute2 and RabbitMQ:
skipped with the reason when one is missing, failed under CI=true.
"""

from __future__ import annotations

import os

import pytest

from tests.hosts.matrix import run_cell
from tests.hosts.nemesis import FAULTS
from tests.hosts.netns import missing_capability
from tests.hosts.rabbit_cluster import RABBIT_SAFE, missing_rabbitmq
from tests.hosts.test_hosts_short import JOBS, _no_job_lost_or_paid_twice
from tests.support.prerequisites import missing

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("HOSTS_RABBIT_TEST") != "1",
                       reason="a RabbitMQ cluster across hosts: `make hosts` runs it (HOSTS_RABBIT_TEST=1)"),
]


@pytest.fixture(autouse=True)
def prerequisites() -> None:
    why = missing_capability() or missing_rabbitmq()
    if why:
        missing(why)


def test_the_poll_queues_leader_killed_loses_and_double_pays_nothing(tmp_path):
    cell = run_cell(tmp_path, FAULTS["RabbitMQ node killed"], RABBIT_SAFE, JOBS, hold_s=5, bound=120)

    # The fault landed: every process of the leader's host (the Erlang VM and epmd) was
    # SIGKILLed and another node listed it down; then it came back and all three run.
    assert "SIGKILLed" in cell.landed and "now empty" in cell.landed, cell.landed
    assert "the poll queue's leader" in cell.landed, cell.landed
    assert "every node lists q1, q2, q3 running" in cell.healed, cell.healed
    _no_job_lost_or_paid_twice(cell.verdict)
    assert cell.notes == []  # no namespace, veth, bridge or /etc/netns entry of the run left behind
