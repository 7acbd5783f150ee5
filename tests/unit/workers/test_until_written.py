"""The write that records a paid upstream task id outlasts a Redis blip."""

from __future__ import annotations

import logging

import pytest
import redis

from workers.steps import ledger


def test_retries_redis_errors_until_the_write_lands(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(ledger.time, "sleep", pauses.append)
    calls = iter([redis.ConnectionError("down"), redis.TimeoutError("slow"), redis.ConnectionError("down"), None])

    def write() -> str:
        fault = next(calls)
        if fault is not None:
            raise fault
        return "written"

    with caplog.at_level(logging.ERROR, "songqueue.tasks"):
        assert ledger.until_written("j1", "task-7", write) == "written"
    assert pauses == [0.2, 0.4, 0.8]  # backs off, never gives up
    assert all("task-7" in r.getMessage() for r in caplog.records) and len(caplog.records) == 3


def test_other_errors_are_not_swallowed() -> None:
    def write() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        ledger.until_written("j1", "task-7", write)
