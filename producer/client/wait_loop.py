"""The one loop that waits for something to end: a job (SongQueue.wait) or a playlist run."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Deadline(TimeoutError, Generic[T]):
    """The wait ran out of time; `last` is what was read last."""

    def __init__(self, last: T) -> None:
        super().__init__("timed out waiting")
        self.last = last


def poll_until(
    read: Callable[[], T],
    ended: Callable[[T], bool],
    timeout: float | None,
    on_progress: Callable[[T], None] | None = None,
    interval: float = 0.5,
) -> T:
    """Read every `interval` seconds until `ended`; raises Deadline past `timeout` seconds.

    `on_progress` sees every read, the last one included, before the verdict on it.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value = read()
        if on_progress is not None:
            on_progress(value)
        if ended(value):
            return value
        if deadline is not None and time.monotonic() >= deadline:
            raise Deadline(value)
        time.sleep(interval)
