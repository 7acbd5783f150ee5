"""POST /v1/uploads and a key's daily budget end to end: `songqueue api` in its own process,
real workers, the sandbox's MiniMax API (it answers at once, so a priced job ends fast).

The id an upload answers is what a MiniMax job then names in refer_voice; the job runs on a
real worker to SUCCEEDED, so the sandbox has checked the id is one it issued for a voice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import requests
import stack

from producer.core.store.api_keys import KeyStore
from sandbox import audio

pytestmark = pytest.mark.integration

_MARKER = b"SECRETFILEBYTES-" + uuid.uuid4().hex.encode()


@pytest.fixture
def start_api(make_stack) -> Iterator[Callable[..., tuple[str, object]]]:
    procs = []

    def start(*args: str, workers: bool = False, **overrides: str) -> tuple[str, object]:
        built = make_stack(**overrides)
        if workers:
            built.start_worker()
        proc, url = stack.start_api(built.env, built.tmp / "api.log", *args)
        procs.append(proc)
        return url, built

    yield start
    for proc in procs:
        stack.stop(proc)


def _key(built, scopes: str, daily_budget: float | None = None) -> str:
    # In-process, not `songqueue keys create` (tests/integration/test_http_api.py runs that):
    # a CLI process per key would be most of this file's time.
    queue = built.queue()
    _, secret = KeyStore(queue.store.redis, queue.settings.key_prefix).create(
        f"k{uuid.uuid4().hex[:6]}", "default", scopes.split(","), daily_budget=daily_budget)
    return secret


def _upload(url: str, key: str | None, data: bytes, purpose: str = "voice") -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(f"{url}/v1/uploads", headers=headers, data={"purpose": purpose},
                         files={"file": ("voice.mp3", data, "audio/mpeg")}, timeout=30)


def test_upload_then_a_priced_job_spends_the_keys_daily_budget(start_api, sandbox):
    # One API for all (a process start is most of the time): a small cap, under which a
    # short ID3-headed file (all the sandbox checks) passes and a real song does not.
    url, built = start_api("--max-upload", "4096", workers=True, minimax_price_per_call="0.5")
    key = _key(built, "submit,read", daily_budget=0.5)
    uploads_before = sandbox.stats()["minimax_uploads"]

    answer = _upload(url, key, b"ID3" + bytes(1000))

    assert answer.status_code == 201, answer.text
    view = answer.json()
    assert view["purpose"] == "voice" and view["refer_field"] == "refer_voice"
    assert view["id"].startswith("vocal-")
    assert sandbox.stats()["minimax_uploads"] == uploads_before + 1
    lyrics = f"##api upload {uuid.uuid4().hex[:8]}"
    job = requests.post(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                        json={"provider": "minimax", "request": {"lyrics": lyrics, "refer_voice": view["id"]}})
    assert job.status_code == 201, job.text
    record = built.queue().wait(job.json()["id"], timeout=60)
    assert record.state.value == "SUCCEEDED", record.error
    assert record.request["refer_voice"] == view["id"] and len(record.songs) == 1
    assert record.cost == 0.5

    # The job's cost (charged by the worker) has spent the key's budget for the UTC day.
    body = {"provider": "minimax", "request": {"lyrics": f"{lyrics} again", "refer_voice": view["id"]}}
    over = requests.post(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30)
    assert over.status_code == 429, over.text
    assert over.headers["content-type"] == "application/problem+json"
    assert "daily budget is spent: 0.5 of 0.5" in over.json()["detail"]
    assert 0 < int(over.headers["Retry-After"]) <= 86400
    # The budget is the key's: another key of the same tenant still submits.
    other = requests.post(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {_key(built, 'submit')}"},
                          json=body, timeout=30)
    assert other.status_code == 201, other.text
    _refusals(url, built, sandbox)


def _refusals(url: str, built, sandbox) -> None:
    submit, read = _key(built, "submit"), _key(built, "read")
    song = audio.song_mp3(1.0, 2)
    assert len(song) > 4096
    before = sandbox.stats()

    no_key = _upload(url, None, b"ID3" + _MARKER)
    read_only = _upload(url, read, b"ID3" + _MARKER)
    bad_purpose = _upload(url, submit, b"ID3" + _MARKER, purpose="song")
    empty = _upload(url, submit, b"")
    too_big = _upload(url, submit, song)
    assert sandbox.stats()["minimax_upload_requests"] == before["minimax_upload_requests"]
    not_audio = _upload(url, submit, b"not a song " + _MARKER)

    assert [r.status_code for r in (no_key, read_only, bad_purpose, empty, too_big, not_audio)] == [
        401, 403, 422, 422, 413, 422]
    for r in (no_key, read_only, bad_purpose, empty, too_big, not_audio):
        assert r.headers["content-type"] == "application/problem+json"
    assert bad_purpose.json()["errors"][0]["field"] == "purpose"
    broken = requests.post(f"{url}/v1/uploads", data=b"--x\r\nbroken", timeout=30, headers={
        "Authorization": f"Bearer {submit}", "Content-Type": "multipart/form-data; boundary=x"})
    assert broken.status_code in (400, 422) and broken.headers["content-type"] == "application/problem+json"
    assert empty.json()["errors"] == [{"field": "file", "rule": "must not be empty"}]
    # MiniMax's refusal, named on the file, in the upstream's words; the file itself never quoted.
    [refusal] = not_audio.json()["errors"]
    assert refusal["field"] == "file" and "not an audio file" in refusal["rule"]
    assert _MARKER.decode() not in not_audio.text
    after = sandbox.stats()
    assert after["minimax_upload_requests"] == before["minimax_upload_requests"] + 1
    assert after["minimax_uploads"] == before["minimax_uploads"]


def test_upstream_failure_is_a_502(start_api, sandbox):
    url, built = start_api(minimax_api_key="sk-wrong-key-0123456789abcdef")
    key = _key(built, "submit")

    answer = _upload(url, key, audio.song_mp3(1.0, 2))

    assert answer.status_code == 502, answer.text
    problem = answer.json()
    assert answer.headers["content-type"] == "application/problem+json" and problem["title"] == "Bad gateway"
    assert "HTTP 401" in problem["detail"] and "sk-wrong-key" not in answer.text
    assert sandbox.api_key not in answer.text
