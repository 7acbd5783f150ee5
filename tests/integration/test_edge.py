"""The edge of `songqueue api` and `songqueue hooks`: no anonymous body is read, and the hook
port serves the hook only. Real server processes, raw sockets where the body matters.

The memory figure: 200 connections at once each announce a 20 MiB upload without a key
and send its first 64 KiB; each must get its 401 while the rest is still unsent (the
server cannot have read what was never sent, so the 401 came from the head), and the
server's resident memory must grow by less than 50 MiB (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import stack

pytestmark = pytest.mark.integration

CONNECTIONS = 200
ANNOUNCED = 20 << 20
SENT = 64 << 10
BOUNDARY = "edgeboundary"
GROWTH_LIMIT = 50 << 20


def rss(pid: int) -> int:
    """Resident memory of a process, from /proc (bytes)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def started(make_stack) -> Iterator[Callable[..., tuple[subprocess.Popen, str, object]]]:
    procs: list[subprocess.Popen] = []

    def start(command: str = "api", env: dict[str, str] | None = None,
              **overrides: str) -> tuple[subprocess.Popen, str, object]:
        built = make_stack(**overrides)
        for name, value in (env or {}).items():
            built.env[name] = value
        log = built.tmp / f"{command}.log"
        if command == "api":
            proc, url = stack.start_api(built.env, log)
        else:
            proc = subprocess.Popen([sys.executable, "-m", "producer.cli.main", command, "--port", "0"],
                                    env=built.env, stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
                                    cwd=stack.ROOT, start_new_session=True)
            line = proc.stdout.readline() if proc.stdout else ""
            assert " listening on http://" in line, (line, log.read_text())
            url = line.split(" listening on ", 1)[1].strip()
        procs.append(proc)
        return proc, url, built

    yield start
    for proc in procs:
        stack.stop(proc)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _upload_head(length: int, key: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (f"POST /v1/uploads HTTP/1.1\r\nHost: x\r\n{auth}"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n").encode()


def _part_start() -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\n"
            f"Content-Type: audio/mpeg\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[int, bytes, bool]:
    """(status, everything the server sent, whether it closed the connection) within 20 s."""
    sock.settimeout(20)
    got = b""
    closed = False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            got += chunk
            head, _, body = got.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if length is not None and len(body) >= length and b"connection: close" not in head.lower():
                break
    except ConnectionResetError:
        closed = True
    status = int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.1 ") else 0
    return status, got, closed


def _anonymous_upload(port: int) -> tuple[int, bytes, bool]:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(_upload_head(ANNOUNCED) + _part_start() + b"\xff" * (SENT - len(_part_start())))
        return _answer(sock)


def test_two_hundred_anonymous_20_mib_uploads_cost_no_memory(started):
    proc, url, _ = started()
    port = _port(url)
    for _ in range(3):  # warm: the first answers load what every later one uses
        assert _anonymous_upload(port)[0] == 401
    before = rss(proc.pid)
    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        answers = list(pool.map(lambda _: _anonymous_upload(port), range(CONNECTIONS)))
    after = rss(proc.pid)
    statuses = [a[0] for a in answers]
    assert statuses == [401] * CONNECTIONS, sorted(set(statuses))
    # Each 401 came with the body unsent (20 MiB announced, 64 KiB sent) and the connection
    # closed: the server neither waited for the body nor drained it.
    assert all(closed for _, _, closed in answers)
    assert all(b"application/problem+json" in got for _, got, _ in answers)
    growth = after - before
    print(f"\nRSS before {before / 2**20:.1f} MiB, after {after / 2**20:.1f} MiB, growth {growth / 2**20:.1f} MiB "
          f"for {CONNECTIONS} anonymous {ANNOUNCED >> 20} MiB uploads")
    assert growth < GROWTH_LIMIT


def test_a_key_is_checked_before_the_body_and_bodies_are_capped_after(started):
    proc, url, built = started()
    port = _port(url)
    done = built.cli("keys", "create", "--name", "reader", "--tenant", "t1", "--scopes", "read", "--json")
    reader = json.loads(done.stdout)["key"]
    done = built.cli("keys", "create", "--name", "submitter", "--tenant", "t1", "--scopes", "submit", "--json")
    submitter = json.loads(done.stdout)["key"]
    # A key without the scope: 403 from the head, the announced body never sent.
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(_upload_head(ANNOUNCED, reader))
        status, got, closed = _answer(sock)
    assert (status, closed) == (403, True) and b"'submit' scope" in got
    # A chunked anonymous body to a JSON route: 401 before the first chunk is read.
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        status, _, closed = _answer(sock)
    assert (status, closed) == (401, True)
    # The right key: the upload is read, and capped as it streams (chunked: no length to refuse up front).
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"POST /v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + submitter.encode() +
                     b"\r\nContent-Type: multipart/form-data; boundary=" + BOUNDARY.encode() +
                     b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"\xff" * (1 << 20)
        sent = 0
        try:
            part = _part_start()
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            while sent < 24 << 20:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-body, as it should be
        status, got, _ = _answer(sock)
    assert status == 413 and b"application/problem+json" in got
    # An anonymous body to an open route is capped small (64 KiB): the console's login form.
    big = requests.post(f"{url}/console/login", data={"api_key": "x" * (100 << 10)}, timeout=20)
    assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"


def test_the_hooks_server_serves_the_hook_and_health_only(started):
    _, url, _ = started("hooks")
    assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
    for method, path in (("GET", "/v1/jobs"), ("POST", "/v1/uploads"), ("GET", "/console/login"),
                         ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/v1/playlists")):
        answer = requests.request(method, f"{url}{path}", timeout=10)
        assert answer.status_code == 404, (path, answer.status_code)
        assert answer.headers["content-type"] == "application/problem+json"
    # The hook itself answers, and bounds what it parses.
    unknown = requests.post(f"{url}/hooks/udio", json={"task_id": f"t-{uuid.uuid4().hex}"}, timeout=10)
    assert unknown.status_code == 404 and unknown.json() == {"error": "unknown task"}
    deep = requests.post(f"{url}/hooks/udio", data=b"[" * 200_000, timeout=10,
                         headers={"Content-Type": "application/json"})
    assert deep.status_code == 413 and deep.headers["content-type"] == "application/problem+json"
    nested = requests.post(f"{url}/hooks/udio", data=b"[" * 40_000 + b"]" * 40_000, timeout=10)
    assert nested.status_code == 413  # over 64 KiB either way
    deep_small = requests.post(f"{url}/hooks/udio", data=b'{"a":' * 5000 + b"1" + b"}" * 5000, timeout=10)
    assert deep_small.status_code == 422 and "nests deeper" in deep_small.json()["detail"]
    # The server is still whole: no traceback killed anything.
    assert requests.get(f"{url}/healthz", timeout=10).status_code == 200


def test_an_idempotency_key_means_one_request_through_the_api_and_the_cli(started):
    _, url, built = started()
    done = built.cli("keys", "create", "--name", "idem", "--tenant", "idem", "--scopes", "submit,read", "--json")
    key = json.loads(done.stdout)["key"]
    auth = {"Authorization": f"Bearer {key}", "Idempotency-Key": "order-7"}
    body = {"provider": "udio", "request": {"prompt": "a song about rain"}}
    first = requests.post(f"{url}/v1/jobs", json=body, headers=auth, timeout=20)
    again = requests.post(f"{url}/v1/jobs", json=body, headers=auth, timeout=20)
    assert (first.status_code, again.status_code) == (201, 200) and again.json()["id"] == first.json()["id"]
    other = requests.post(f"{url}/v1/jobs", json={**body, "request": {"prompt": "a song about snow"}},
                          headers=auth, timeout=20)
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"
    assert "'order-7'" in other.json()["detail"] and "another request" in other.json()["detail"]
    # The CLI shares the check (tenant default: its own namespace of keys).
    assert built.cli("submit", "--prompt", "a song about rain", "--idempotency-key", "cli-1").returncode == 0
    refused = built.cli("submit", "--prompt", "a song about snow", "--idempotency-key", "cli-1")
    assert refused.returncode == 2 and "'cli-1'" in refused.stderr and "another request" in refused.stderr


NO_AWS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
          "AWS_CONFIG_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}


def test_errors_are_problems_views_hide_storage_and_readyz_sees_storage(started):
    """S3 storage without credentials: /readyz fails, a song download is a 503 problem, and no
    view shows the song's bucket key or server path."""
    from producer.core.models.job_record import JobRecord, JobState, SongRecord, StoredObject
    from tests.support.job_paths import walk

    _, url, built = started(env=NO_AWS, storage_url="s3://songs-bucket/prod")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert built.env[name] == ""  # boto3 reads empty as absent: no credentials anywhere
    done = built.cli("keys", "create", "--name", "dl", "--tenant", "default", "--scopes", "read", "--json")
    key = {"Authorization": f"Bearer {json.loads(done.stdout)['key']}"}
    queue = built.queue()
    audio = StoredObject(uri="s3://songs-bucket/prod/jobs/j/song-1.mp3", key="prod/jobs/j/song-1.mp3", size=3,
                         sha256="ab", content_type="audio/mpeg")
    record, _ = queue.store.create(JobRecord(id=uuid.uuid4().hex, provider="udio", model="udio32-v1.5",
                                             request={"prompt": "p"}))
    walk(queue.store, record.id, JobState.SUCCEEDED,
         mutate=lambda r: setattr(r, "songs", [SongRecord(upstream_id="s1", title="t", audio=audio)]))

    ready = requests.get(f"{url}/readyz", timeout=30)
    assert ready.status_code == 503 and "storage" in ready.json()["detail"]
    download = requests.get(f"{url}/v1/jobs/{record.id}/songs/1/audio", headers=key, timeout=30,
                            allow_redirects=False)
    assert download.status_code == 503 and download.headers["content-type"] == "application/problem+json"
    view = requests.get(f"{url}/v1/jobs/{record.id}", headers=key, timeout=30)
    assert view.status_code == 200 and view.json()["songs"][0]["audio"]["link"].startswith("/v1/jobs/")
    assert "songs-bucket" not in view.text and "prod/jobs" not in view.text
