"""The worker's watchdog timer: rounds tick until stopped, and a failing round is no reason to stop."""

from __future__ import annotations

import threading

from workers.watchdog_timer import tick


def test_ticks_every_round_until_stopped_and_survives_failures() -> None:
    stop = threading.Event()
    calls: list[str] = []

    def failing() -> None:
        calls.append("failing")
        raise ConnectionError("redis is down")

    def counting() -> None:
        calls.append("counting")
        if calls.count("counting") == 3:
            stop.set()

    thread = threading.Thread(target=tick, args=([failing, counting], 0.001, stop))
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert calls == ["failing", "counting"] * 3  # the failure never skipped the next round
