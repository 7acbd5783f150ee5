"""`songqueue api` under slow clients: hundreds of half-sent requests are held while a
normal client is still answered, and they are cut off after the server's read timeout.

A half-sent body comes with a valid key: without one the edge answers 401 from the head and
never waits for the body (tests/integration/test_edge.py).

Structure, not timing: the slow connections are opened before the normal one, and the
server accepts from its backlog in order, so an answer to the normal client means every
slow one was accepted and is being held.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
import requests
import stack

pytestmark = pytest.mark.integration

SLOW_HEADS = 150   # the head never ends
SLOW_BODIES = 150  # the head ends, the body never does


@pytest.fixture
def start_api(make_stack, tmp_path) -> Iterator[Callable[[str], tuple[str, str]]]:
    procs = []

    def start(read_timeout: str) -> tuple[str, str]:
        built = make_stack()
        proc, url = stack.start_api(built.env, tmp_path / f"api{len(procs)}.log", "--read-timeout", read_timeout)
        procs.append(proc)
        # Hundreds of requests at once from one key: its rate (a fair share, 50/s by default) is not what is tested.
        done = built.cli("keys", "create", "--name", "slow", "--tenant", "slow", "--scopes", "submit",
                         "--request-rate", "100000", "--json")
        assert done.returncode == 0, done.stderr
        return url, json.loads(done.stdout)["key"]

    yield start
    for proc in procs:
        stack.stop(proc)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _half_head(port: int, sockets: ExitStack) -> socket.socket:
    s = sockets.enter_context(socket.create_connection(("127.0.0.1", port)))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    return s


def _half_body(port: int, sockets: ExitStack, key: str) -> socket.socket:
    s = sockets.enter_context(socket.create_connection(("127.0.0.1", port)))
    s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer " + key.encode() + b"\r\n"
              b"Content-Length: 100\r\n\r\n{\"provider\": ")
    return s


def _read_so_far(s: socket.socket) -> tuple[bytes, bool]:
    """What the server sent without waiting, and whether it closed the connection."""
    s.setblocking(False)
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
        return got, True
    except BlockingIOError:
        return got, False
    except ConnectionResetError:  # closed with our unread bytes in its buffer
        return got, True
    finally:
        s.setblocking(True)


def test_a_normal_client_is_answered_while_hundreds_of_slow_ones_are_held(start_api):
    url, key = start_api("600")
    with ExitStack() as sockets:
        slow = [_half_head(_port(url), sockets) for _ in range(SLOW_HEADS)]
        slow += [_half_body(_port(url), sockets, key) for _ in range(SLOW_BODIES)]
        answer = requests.get(f"{url}/healthz", timeout=30)
        assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
        # Every slow client is still held, unanswered: nothing was refused to make room.
        assert [_read_so_far(s) for s in slow] == [(b"", False)] * len(slow)


def test_slow_clients_are_cut_off_after_the_read_timeout(start_api):
    url, key = start_api("0.5")
    with ExitStack() as sockets:
        heads = [_half_head(_port(url), sockets) for _ in range(20)]
        bodies = [_half_body(_port(url), sockets, key) for _ in range(20)]
        seen: dict[socket.socket, tuple[bytes, bool]] = {}

        def all_cut() -> bool:
            for s in heads + bodies:
                got, closed = _read_so_far(s)
                prior = seen.get(s, (b"", False))[0]
                seen[s] = (prior + got, closed)
            return all(closed for _, closed in seen.values())

        stack.wait_until(all_cut, 30, "the slow clients to be closed")
        assert all(seen[s][0] == b"" for s in heads)  # a half head is closed without an answer
        assert all(seen[s][0].startswith(b"HTTP/1.1 408 ") for s in bodies), {seen[s][0][:40] for s in bodies}
        # And the server still answers.
        assert requests.get(f"{url}/healthz", timeout=30).status_code == 200
