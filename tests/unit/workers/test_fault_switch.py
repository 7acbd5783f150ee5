"""A crash point acts only beside the fault tests' explicit switch; armed by mistake, the
worker refuses to start and doctor says so."""

from __future__ import annotations

import pytest

from producer.doctor import config_checks
from workers import fault_points


def test_a_point_without_the_switch_is_named_with_the_fix():
    reason = fault_points.armed_without_switch({"SONGQUEUE_FAULT_POINT": "submit.after_call:kill"})
    assert reason and "SONGQUEUE_TEST_FAULTS=1" in reason and "Unset SONGQUEUE_FAULT_POINT" in reason
    assert fault_points.armed_without_switch({"SONGQUEUE_FAULT_POINT": "submit.after_call:kill",
                                              "SONGQUEUE_TEST_FAULTS": "1"}) is None
    assert fault_points.armed_without_switch({}) is None


def test_the_worker_refuses_to_start_armed_by_mistake(monkeypatch):
    monkeypatch.setenv("SONGQUEUE_FAULT_POINT", "submit.after_call:kill")
    monkeypatch.delenv("SONGQUEUE_TEST_FAULTS", raising=False)
    with pytest.raises(SystemExit, match="SONGQUEUE_TEST_FAULTS=1"):
        fault_points.refuse_unarmed()


def test_hit_does_nothing_without_the_switch(monkeypatch):
    """Even past start-up (a child with an altered environment): no switch, no act, no Redis."""
    monkeypatch.setenv("SONGQUEUE_FAULT_POINT", "submit.after_call:kill")
    monkeypatch.delenv("SONGQUEUE_TEST_FAULTS", raising=False)
    monkeypatch.setattr(fault_points.runtime, "store", lambda: pytest.fail("reached Redis"))
    fault_points.hit("submit.after_call")  # returns: the process is still here


def test_doctor_fails_while_a_point_is_set(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env of the repository
    monkeypatch.setenv("SONGQUEUE_FAULT_POINT", "download.after_put:kill_worker")
    line = config_checks.unknown_settings()
    assert not line.ok and "crashes itself on purpose" in line.detail and "unset SONGQUEUE_FAULT_POINT" in line.fix
    monkeypatch.delenv("SONGQUEUE_FAULT_POINT")
    assert config_checks.unknown_settings().ok
