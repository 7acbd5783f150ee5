"""The one deadline thread per process (workers/upstream/cutoff.py): each live deadline shuts
its own socket at its own time, an ended request's deadline never fires, and a forked child
keeps deadlines of its own."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from workers.upstream.cutoff import Cutoff


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made: list[tuple[socket.socket, socket.socket]] = []
    yield made
    for a, b in made:
        a.close()
        b.close()


def _response(pairs: list[tuple[socket.socket, socket.socket]]) -> tuple[Any, socket.socket]:
    """A stand-in for requests.Response whose body is read from one end of a socket pair."""
    ours, theirs = socket.socketpair()
    pairs.append((ours, theirs))
    return SimpleNamespace(raw=SimpleNamespace(connection=SimpleNamespace(sock=ours))), ours


def _read_ends_within(sock: socket.socket, seconds: float) -> float:
    """Block in recv() as a body read does; how long until the shutdown ended it."""
    sock.settimeout(seconds)
    started = time.monotonic()
    assert sock.recv(1) == b""  # shut down: end of stream, not a timeout
    return time.monotonic() - started


def test_each_deadline_shuts_its_own_socket_in_deadline_order(pairs) -> None:
    late_response, late_sock = _response(pairs)
    early_response, early_sock = _response(pairs)
    with Cutoff(late_response, time.time() + 1.5) as late:
        # Added second, due first: the thread, asleep until the later one, is woken for it.
        with Cutoff(early_response, time.time() + 0.2) as early:
            waited = _read_ends_within(early_sock, 5)
            assert early.fired and not late.fired
            assert waited < 1.4
        _read_ends_within(late_sock, 5)
        assert late.fired


def test_an_ended_requests_deadline_never_fires(pairs) -> None:
    response, sock = _response(pairs)
    with Cutoff(response, time.time() + 0.2) as ended:
        pass
    watcher_response, watcher_sock = _response(pairs)
    with Cutoff(watcher_response, time.time() + 0.6):
        _read_ends_within(watcher_sock, 5)  # past the ended one's deadline too
    assert not ended.fired
    sock.settimeout(0)
    with pytest.raises(BlockingIOError):
        sock.recv(1)  # still open: nothing shut it down


def test_many_threads_at_once(pairs) -> None:
    responses = [_response(pairs) for _ in range(8)]
    results: list[bool] = []

    def one(response: Any, sock: socket.socket, delay: float) -> None:
        with Cutoff(response, time.time() + delay) as cutoff:
            _read_ends_within(sock, 5)
        results.append(cutoff.fired)

    threads = [threading.Thread(target=one, args=(r, s, 0.1 + 0.05 * i)) for i, (r, s) in enumerate(responses)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [True] * 8


def test_a_forked_child_fires_its_own_deadlines(pairs) -> None:
    # The parent's thread exists first, as in a worker whose pool children fork later.
    response, sock = _response(pairs)
    with Cutoff(response, time.time() + 0.1):
        _read_ends_within(sock, 5)
    child_response, child_sock = _response(pairs)
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only if its deadline fired
        code = 1
        try:
            with Cutoff(child_response, time.time() + 0.2) as cutoff:
                _read_ends_within(child_sock, 5)
            code = 0 if cutoff.fired else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
