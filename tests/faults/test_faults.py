"""Every fault scenario, small and fast: the right end state, nothing lost, nothing billed twice."""

from __future__ import annotations

import pytest

from tests.faults.fault_scenarios import FAST, POINT_SCENARIOS, SANDBOX_KEY, SCENARIOS, Scenario, run
from tests.support.prerequisites import require_amqp
from tests.support.rabbitmq import private_vhost

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fault_sandbox(tmp_path_factory):
    import stack

    proc, url = stack.start_sandbox("--api-key", SANDBOX_KEY, "--generation-time", "2", "--song-duration", "2",
                                    log=tmp_path_factory.mktemp("fault-sandbox") / "sandbox.log")
    yield url
    stack.stop(proc)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_fault_scenario(scenario: Scenario, fault_sandbox, tmp_path):
    _check(scenario, run(scenario, tmp_path, fault_sandbox, jobs=4, settings=FAST, timeout=90))


# One crash point in `make test` (a worker SIGKILLs itself between the paid call and its
# record); `make faults` runs them all.
SAMPLE_POINTS = [s for s in POINT_SCENARIOS if "submit.after_call" in s.name or "download.after_put" in s.name]


@pytest.mark.parametrize("scenario", SAMPLE_POINTS, ids=[s.name for s in SAMPLE_POINTS])
def test_crash_point(scenario: Scenario, fault_sandbox, tmp_path):
    _check(scenario, run(scenario, tmp_path, fault_sandbox, jobs=3, settings=FAST, timeout=90))


ON_RABBITMQ = [s for s in SCENARIOS if s.name in ("no faults", "worker SIGKILL during poll")]


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
@pytest.mark.parametrize("scenario", ON_RABBITMQ, ids=[s.name for s in ON_RABBITMQ])
def test_fault_scenario_on_rabbitmq(scenario: Scenario, queue_type: str, fault_sandbox, tmp_path):
    # Quorum: the countdowns the killed worker would have held wait in the broker instead.
    settings = {**FAST, "AMQP_QUEUE_TYPE": queue_type}
    with private_vhost(require_amqp()) as amqp_url:
        _check(scenario, run(scenario, tmp_path, fault_sandbox, jobs=4, settings=settings, broker_url=amqp_url,
                             timeout=90))


def _check(scenario: Scenario, result) -> None:

    assert result.lost == 0, result.details
    assert result.submitted_twice == 0
    assert result.unexpected == 0, result.details
    if scenario.disrupt is not None:
        # The fault happened and every job ended after it (how fast is bench's business; the
        # run's own deadline bounds it here).
        assert result.recover_s is not None and result.recover_s >= 0
