"""The sandbox's Suno endpoints over real HTTP: submit, both single-fetch shapes, batch fetch."""

from __future__ import annotations

import uuid

import pytest
import requests

from deploy.local import stack


@pytest.fixture
def call(sandbox):
    auth = {"Authorization": f"Bearer {sandbox.api_key}"}

    def send(method: str, path: str, body: object = None) -> requests.Response:
        return requests.request(method, sandbox.url + path, json=body, headers=auth, timeout=10)

    return send


def _submit(call, extra: str = "") -> str:
    answer = call("POST", "/suno/submit/music", {"gpt_description_prompt": f"x {uuid.uuid4().hex[:8]} {extra}"})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def test_single_fetch_shapes(call) -> None:
    task = call("GET", f"/suno/fetch/{_submit(call)}").json()["data"]
    assert set(task) >= {"task_id", "status", "progress", "data"} and len(task["data"]) == 2
    clips = call("GET", f"/suno/fetch/{_submit(call, 'sandbox:clip_array')}").json()["data"]
    assert isinstance(clips, list) and {c["status"] for c in clips} <= {"submitted", "queued"}


def test_batch_fetch_leaves_unknown_ids_out_and_says_null_for_none(call, sandbox) -> None:
    ids = [_submit(call) for _ in range(5)]
    before = sandbox.stats().get("batch_fetch_requests", 0)
    answer = call("POST", "/suno/fetch", {"ids": [*ids, "no-such-task"], "action": "MUSIC"}).json()
    assert sorted(t["task_id"] for t in answer["data"]) == sorted(ids)
    assert call("POST", "/suno/fetch", {"ids": ["no-such-task"]}).json() == {"code": "success", "message": "",
                                                                            "data": None}
    assert sandbox.stats()["batch_fetch_requests"] == before + 2


def test_clips_stream_before_complete(call) -> None:
    task_id = _submit(call, "sandbox:gen_time=1.5")
    seen: dict[str, str] = {}

    def completed() -> bool:
        for clip in call("GET", f"/suno/fetch/{task_id}").json()["data"]["data"]:
            seen.setdefault(clip["status"], clip["audio_url"])
        return "complete" in seen

    stack.wait_until(completed, 20, "a complete clip", interval=0.05)
    assert "/suno/stream?item_id=" in seen["streaming"]
    assert "/files/" in seen["complete"]


def test_submit_refuses_an_unknown_model(call) -> None:
    answer = call("POST", "/suno/submit/music", {"gpt_description_prompt": "x", "mv": "chirp-v9"})
    assert answer.status_code == 400 and "mv" in answer.json()["message"]
