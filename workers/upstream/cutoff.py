"""The deadline of one HTTP answer: its socket is shut down when the deadline passes.

A read blocked in recv() returns at once then; checking the clock only after a read
returned let a trickling body hold the call (and the worker) for as long as it trickled,
past the watchdog's budget for it.

One thread per process keeps every live deadline, not a timer thread per request: a
thread started and cancelled for each gateway call and download was 6 thread creations a
job (submit, poll, a cover and an MP3 per song), each with its stack and wake-ups.
The thread sleeps until the earliest live deadline; a request that ends first only takes
its deadline out. A forked pool child starts its own thread on first use.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
from time import time

import requests


class Cutoff:
    """Shuts the response's socket down if it is still open at `deadline` (wall-clock
    seconds, like time.time()); `fired` says whether it did."""

    def __init__(self, response: requests.Response, deadline: float) -> None:
        self._response = response
        self.deadline = deadline
        self.fired = False
        self._id = 0

    def __enter__(self) -> Cutoff:
        self._id = _KEEPER.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _KEEPER.remove(self._id)

    def fire(self) -> None:
        self.fired = True
        sock = _socket_of(self._response)
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: the read ends anyway
                sock.shutdown(socket.SHUT_RDWR)


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket the body is read from: the connection's, or, once http.client handed the
    connection over to the response (an answer that closes it), the one under its reader."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is None:
        reader = getattr(getattr(response.raw, "_fp", None), "fp", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


class _Keeper:
    """The live cutoffs of this process and the one thread that fires them."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._cond = threading.Condition()
        self._live: dict[int, Cutoff] = {}
        self._ids = itertools.count(1)
        self._wakes_at = float("inf")  # the deadline the thread sleeps until
        self._pid = 0  # the process whose thread runs (0: none started yet)

    def add(self, cutoff: Cutoff) -> int:
        with self._cond:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="songqueue-cutoff", daemon=True).start()
            key = next(self._ids)
            self._live[key] = cutoff
            if cutoff.deadline < self._wakes_at:
                self._cond.notify()  # sooner than the thread was going to look
            return key

    def remove(self, key: int) -> None:
        with self._cond:
            self._live.pop(key, None)  # the thread finds nothing due when it wakes

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time()
                due = [key for key, c in self._live.items() if c.deadline <= now]
                for key in due:
                    self._live.pop(key).fire()
                self._wakes_at = min((c.deadline for c in self._live.values()), default=float("inf"))
                self._cond.wait(None if self._wakes_at == float("inf") else self._wakes_at - now)


_KEEPER = _Keeper()
# The parent's thread does not exist in a forked child, and its lock may have been held.
os.register_at_fork(after_in_child=_KEEPER.reset)
