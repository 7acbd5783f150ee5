"""The sandbox's transport manners over real HTTP (sandbox/manners.py): bodies that trickle,
redirects, tasks unknown for a while or expired, scattered batch omissions; each one proven
by the sandbox's own counters."""

from __future__ import annotations

import json
import socket
import uuid
from typing import Any

import pytest
import requests

from deploy.local import stack
from sandbox.faults import DirectiveError, parse_directives

UDIO_SUBMIT = "/udio/generate-proxy"
NOT_FOUND = {"code": "error", "message": "task not found"}


@pytest.fixture
def call(sandbox):
    auth = {"Authorization": f"Bearer {sandbox.api_key}"}

    def send(method: str, path: str, body: object = None, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        return requests.request(method, sandbox.url + path, json=body, headers=auth, timeout=30, **kwargs)

    return send


def _prompt(directives: str) -> str:
    return f"song {uuid.uuid4().hex[:8]} {directives}"


def _udio(call, directives: str) -> tuple[str, requests.Response]:
    prompt = _prompt(directives)
    return prompt, call("POST", UDIO_SUBMIT, {"gen_params": {"prompt": prompt}})


def _suno(call, directives: str) -> str:
    answer = call("POST", "/suno/submit/music", {"gpt_description_prompt": _prompt(directives)})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"])


def _delta(before: dict[str, Any], after: dict[str, Any], name: str) -> int:
    return int(after.get(name, 0)) - int(before.get(name, 0))


def test_submit_trickle_sends_the_head_at_once_and_the_body_a_byte_at_a_time(sandbox) -> None:
    prompt = _prompt("sandbox:submit_trickle=150")
    body = json.dumps({"gen_params": {"prompt": prompt}}).encode()
    before = sandbox.stats()
    host, port = sandbox.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST {UDIO_SUBMIT} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sandbox.api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(4096)
        head, _, rest = received.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        # The task exists before the answer starts: the head says so with its length.
        assert _delta(before, sandbox.stats(), "submits") == 1
        rest = rest or sock.recv(4096)
        assert 0 < len(rest) < length  # the body did not come with the head
        while len(rest) < length:
            chunk = sock.recv(4096)
            assert chunk, "the trickled body ended early"
            rest += chunk
    assert json.loads(rest)["code"] == "success"
    after = stack.wait_until(lambda: (s := sandbox.stats())["trickle_completed"] > before["trickle_completed"] and s,
                             10, "the trickled body counted as sent whole")
    assert _delta(before, after, "trickled") == 1
    assert after["submits_by_prompt"][prompt] == 1
    task_id = json.loads(rest)["data"]
    assert after["faults_by_task"][task_id] == {"submit_trickle": 1}


def test_fetch_trickle_counts_and_the_body_is_whole(call, sandbox) -> None:
    _, answer = _udio(call, "sandbox:fetch_trickle=5")
    before = sandbox.stats()
    fetched = call("GET", f"/udio/fetch/{answer.json()['data']}")
    assert fetched.status_code == 200 and fetched.json()["code"] == "success"
    # Counted once the last byte left, which may be just after the client read it.
    after = stack.wait_until(lambda: _delta(before, s := sandbox.stats(), "trickle_completed") and s,
                             10, "the trickled fetch counted as sent whole")
    assert _delta(before, after, "trickled") == 1 and _delta(before, after, "trickle_completed") == 1


def test_submit_redirect_creates_the_task_then_answers_307(call, sandbox) -> None:
    before = sandbox.stats()
    prompt, answer = _udio(call, "sandbox:submit_redirect=http://127.0.0.2:9/steal")
    assert answer.status_code == 307 and answer.headers["Location"] == "http://127.0.0.2:9/steal"
    after = sandbox.stats()
    assert after["submits_by_prompt"][prompt] == 1 and _delta(before, after, "redirected") == 1
    assert _delta(before["faults"], after["faults"], "submit_redirect") == 1


def test_fetch_and_download_redirects(call, sandbox) -> None:
    _, answer = _udio(call, "sandbox:fetch_redirect=http://127.0.0.2:9/f sandbox:gen_time=0")
    moved = call("GET", f"/udio/fetch/{answer.json()['data']}")
    assert moved.status_code == 302 and moved.headers["Location"] == "http://127.0.0.2:9/f"

    _, answer = _udio(call, "sandbox:dl_redirect=http://other.example:9/d sandbox:gen_time=0")
    songs = call("GET", f"/udio/fetch/{answer.json()['data']}").json()["data"]["data"]["songs"]
    before = sandbox.stats()
    song = requests.get(songs[0]["song_path"], allow_redirects=False, timeout=10)
    cover = requests.get(songs[0]["image_path"], allow_redirects=False, timeout=10)
    assert (song.status_code, cover.status_code) == (302, 302)
    assert song.headers["Location"] == "http://other.example:9/d"
    assert _delta(before, sandbox.stats(), "redirected") == 2


def test_unknown_for_answers_404_then_the_task_is_found_progressed(call, sandbox) -> None:
    _, answer = _udio(call, "sandbox:unknown_for=1 sandbox:gen_time=1.5")
    task_id = answer.json()["data"]
    before = sandbox.stats()
    first = call("GET", f"/udio/fetch/{task_id}")
    assert first.status_code == 404 and first.json() == NOT_FOUND
    assert _delta(before, sandbox.stats(), "unknown_answered") == 1
    found = stack.wait_until(lambda: (r := call("GET", f"/udio/fetch/{task_id}")).status_code == 200 and r,
                             10, "the task known after unknown_for", interval=0.1)
    # Its clock started at the submit: it is found already running, not just submitted.
    assert found.json()["data"]["status"] in ("IN_PROGRESS", "SUCCESS")


def test_expire_forgets_the_task_for_good(call, sandbox) -> None:
    _, answer = _udio(call, "sandbox:expire=1 sandbox:gen_time=0")
    task_id = answer.json()["data"]
    assert call("GET", f"/udio/fetch/{task_id}").status_code == 200
    stack.wait_until(lambda: call("GET", f"/udio/fetch/{task_id}").status_code == 404, 10, "expiry", interval=0.1)
    before = sandbox.stats()
    again = call("GET", f"/udio/fetch/{task_id}")
    assert again.status_code == 404 and again.json() == NOT_FOUND
    assert _delta(before, sandbox.stats(), "expired_answered") == 1


def test_suno_batch_leaves_out_unknown_and_every_nth(call, sandbox) -> None:
    every = _suno(call, "sandbox:batch_absent_every=2")
    unknown = _suno(call, "sandbox:unknown_for=30")
    before = sandbox.stats()
    seen = []
    for _ in range(4):
        data = call("POST", "/suno/fetch", {"ids": [every, unknown], "action": "MUSIC"}).json()["data"] or []
        seen.append({t["task_id"] for t in data})
    assert seen == [{every}, set(), {every}, set()]
    after = sandbox.stats()
    assert _delta(before, after, "batch_omitted") == 2 + 4
    assert after["faults_by_task"][every]["batch_absent_every"] == 2
    assert _delta(before, after, "unknown_answered") == 4
    single = call("GET", f"/suno/fetch/{unknown}")
    assert single.status_code == 404 and single.json() == NOT_FOUND


def test_suno_batch_honours_fetch_redirect_of_a_task_it_names(call) -> None:
    plain, moved = _suno(call, ""), _suno(call, "sandbox:fetch_redirect=http://127.0.0.2:9/b")
    answer = call("POST", "/suno/fetch", {"ids": [plain, moved]})
    assert answer.status_code == 302 and answer.headers["Location"] == "http://127.0.0.2:9/b"


def test_minimax_upload_redirect_is_a_config_knob(sandbox) -> None:
    auth = {"Authorization": f"Bearer {sandbox.api_key}"}
    sandbox.configure(upload_redirect="http://127.0.0.2:9/up")
    try:
        before = sandbox.stats()
        answer = requests.post(sandbox.url + "/minimaxi/v1/music_upload", files={"purpose": (None, "voice")},
                               headers=auth, allow_redirects=False, timeout=10)
        assert answer.status_code == 302 and answer.headers["Location"] == "http://127.0.0.2:9/up"
        assert _delta(before, sandbox.stats(), "redirected") == 1
    finally:
        sandbox.configure(upload_redirect="")


@pytest.mark.parametrize("token", ["sandbox:submit_redirect", "sandbox:fetch_redirect=ftp://x",
                                   "sandbox:submit_trickle=0", "sandbox:unknown_for=-1",
                                   "sandbox:batch_absent_every=1.5"])
def test_bad_transport_directives_are_refused(token: str) -> None:
    with pytest.raises(DirectiveError):
        parse_directives(token)
