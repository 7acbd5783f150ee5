"""`songqueue api` with SONGQUEUE_API_WORKERS=2: two processes, each on a listening socket of
its own on the one port (SO_REUSEPORT), so that keep-alive connections opened together are
spread over both; each process has the guards of one (a half-sent head is cut off after the read timeout);
a revoked key is refused from the next request on, on connections each process has already
served it on (each remembers the secret's key id, never the key); and the processes stop
together: SIGTERM stops both, and one that dies takes the other down with it, so the
supervisor sees the exit instead of a silently halved API.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
import stack

pytestmark = pytest.mark.integration
CONNECTIONS = 12
SPREAD = 20


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(p) for p in children.read_text().split()]
    return sorted(set(found))


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return status != "Z"


def _running_api(make_stack, tmp_path, read_timeout: str) -> Iterator[tuple[object, str, object]]:
    built = make_stack(api_workers="2")
    proc, url = stack.start_api(built.env, tmp_path / "api.log", "--read-timeout", read_timeout)
    stack.wait_until(lambda: len(_children(proc.pid)) == 2, 30, "two API processes")
    yield proc, url, built
    stack.stop(proc)


@pytest.fixture
def api(make_stack, tmp_path) -> Iterator[tuple[object, str, object]]:
    """Two API processes that cut off a head not sent within 0.5 s."""
    yield from _running_api(make_stack, tmp_path, "0.5")


@pytest.fixture
def patient_api(make_stack, tmp_path) -> Iterator[tuple[object, str, object]]:
    """Two API processes with the default 30 s for a head: connections held open while others
    are answered on a busy machine stay open until counted."""
    yield from _running_api(make_stack, tmp_path, "30")


def _key(built) -> tuple[str, str]:
    done = built.cli("keys", "create", "--name", "workers", "--tenant", "w", "--scopes", "read",
                     "--request-rate", "100000", "--json")
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    return made["id"], made["key"]


def test_a_revoked_key_is_refused_at_once_by_every_process(api):
    _proc, url, built = api
    key_id, secret = _key(built)
    sessions = []
    for _ in range(CONNECTIONS):  # held open: keep-alive connections, spread by the kernel over the processes
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {secret}"
        sessions.append(session)
    try:
        assert [s.get(f"{url}/v1/jobs", timeout=30).status_code for s in sessions] == [200] * CONNECTIONS
        revoked = built.cli("keys", "revoke", key_id)
        assert revoked.returncode == 0, revoked.stderr
        answers = [s.get(f"{url}/v1/jobs", timeout=30) for s in sessions]
        assert [a.status_code for a in answers] == [401] * CONNECTIONS
        assert {a.json()["detail"] for a in answers} == {"unknown or revoked API key"}
    finally:
        for session in sessions:
            session.close()


def _sockets_on(pid: int, port: int, state: str) -> set[str]:
    """The inodes of the TCP sockets process `pid` holds on local `port` in `state` (from /proc;
    "0A" listening, "01" established)."""
    inodes = {os.readlink(fd)[len("socket:["):-1] for fd in Path(f"/proc/{pid}/fd").iterdir()
              if os.readlink(fd).startswith("socket:[")}
    found = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state and fields[9] in inodes:
            found.add(fields[9])
    return found


def test_each_process_listens_on_a_socket_of_its_own_and_gets_a_share(patient_api):
    proc, url, _built = patient_api
    port = int(url.rsplit(":", 1)[1])
    children = _children(proc.pid)
    listening = [_sockets_on(child, port, "0A") for child in children]
    # One socket each, not one shared: a shared socket's connections go to whichever process
    # accepts first, and an idle event loop takes all that wait in one wakeup.
    assert [len(mine) for mine in listening] == [1, 1] and listening[0] != listening[1], listening
    with ExitStack() as sockets:
        held = [sockets.enter_context(socket.create_connection(("127.0.0.1", port))) for _ in range(SPREAD)]
        for s in held:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in held:  # an answer on each: every connection has been accepted by the process that holds it
            s.settimeout(30)
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
        per_process = [len(_sockets_on(child, port, "01")) for child in children]
    # The kernel hashes each connection to one of the two sockets: all 20 on one would happen
    # once in about 500,000 runs (2 x 2^-20) by chance.
    assert sum(per_process) == SPREAD and min(per_process) > 0, per_process


def test_each_process_cuts_off_a_half_sent_head(api):
    _proc, url, _built = api
    port = int(url.rsplit(":", 1)[1])
    with ExitStack() as sockets:
        heads = [sockets.enter_context(socket.create_connection(("127.0.0.1", port))) for _ in range(CONNECTIONS)]
        for s in heads:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            s.settimeout(30)
        # recv returns b"" once the server closed the connection; it never answers a half head.
        assert [s.recv(65536) for s in heads] == [b""] * CONNECTIONS
    assert requests.get(f"{url}/healthz", timeout=30).status_code == 200


def test_sigterm_stops_every_process(api):
    proc, url, _built = api
    children = _children(proc.pid)
    os.kill(proc.pid, signal.SIGTERM)  # the parent only: it passes the stop on
    assert proc.wait(30) == 0
    assert not any(_alive(pid) for pid in children)


def test_one_process_dying_stops_the_other_and_the_api_exits(api):
    proc, url, _built = api
    first, second = _children(proc.pid)
    os.kill(first, signal.SIGKILL)
    assert proc.wait(30) != 0
    stack.wait_until(lambda: not _alive(second), 30, "the other API process to stop")
