"""The fault rows, small and fast: the right end state and every invariant of
tests/faults/invariants.py (nothing lost, paid once, charged right, stored with its sha256,
callbacks received, indexes in agreement) for every job."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.faults.fault_scenarios import FAST, NEW_SCENARIOS, POINT_SCENARIOS, SCENARIOS, Result, Scenario, run
from tests.faults.harness import SANDBOX_KEY
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


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.row for s in SCENARIOS])
def test_fault_scenario(scenario: Scenario, fault_sandbox, tmp_path):
    _check(scenario, run(scenario, tmp_path, fault_sandbox, jobs=4, settings=FAST, timeout=90))


# A few crash points in `make test` (the paid call and its record, a stored object and
# its record, a callback POST and its settlement, a full disk in finalize; two of them with
# the whole worker killed, here at the short watchdog settings); `make faults` runs every
# point for every provider, whole-worker rows at the default watchdog settings.
SAMPLES = {"pool child killed at submit.after_call · udio 302.ai", "pool child killed at download.after_put · minimax",
           "pool child killed at submit.after_call · minimax",
           "pool child killed at callback.after_post · udio openai-hk",
           "worker killed at submit.after_call · suno", "worker killed at download.after_put · udio 302.ai",
           "disk full (ENOSPC) in the store at finalize.before_put · udio 302.ai"}
SAMPLE_POINTS = [replace(s, default_watchdog=False) for s in POINT_SCENARIOS + NEW_SCENARIOS if s.row in SAMPLES]


def test_every_sample_is_a_row():
    assert len(SAMPLE_POINTS) == len(SAMPLES)


@pytest.mark.parametrize("scenario", SAMPLE_POINTS, ids=[s.row for s in SAMPLE_POINTS])
def test_crash_point(scenario: Scenario, fault_sandbox, tmp_path):
    _check(scenario, run(scenario, tmp_path, fault_sandbox, jobs=3, settings=FAST, timeout=90))


ON_RABBITMQ = [s for s in SCENARIOS if s.name in ("no faults", "worker SIGKILL during poll")]


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
@pytest.mark.parametrize("scenario", ON_RABBITMQ, ids=[s.row for s in ON_RABBITMQ])
def test_fault_scenario_on_rabbitmq(scenario: Scenario, queue_type: str, fault_sandbox, tmp_path):
    # Quorum: the countdowns the killed worker would have held wait in the broker instead.
    settings = {**FAST, "AMQP_QUEUE_TYPE": queue_type}
    with private_vhost(require_amqp()) as amqp_url:
        _check(scenario, run(scenario, tmp_path, fault_sandbox, jobs=4, settings=settings, broker_url=amqp_url,
                             timeout=90))


def _check(scenario: Scenario, result: Result) -> None:
    assert result.lost == 0, result.broken
    assert result.submitted_twice == 0 and result.paid_but_forgotten == 0, result.broken
    assert result.unexpected == 0, result.broken
    assert not result.broken  # every invariant held (a fault that did not land is listed here too)
    assert result.jobs and result.ok
    if scenario.disrupt is not None:
        # The fault caught a job mid-flight, and that job ended (how fast is the report's
        # business; the run's own deadline bounds it here).
        assert result.recoveries
