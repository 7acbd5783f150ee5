"""The HTTP API end to end: `songqueue api` in its own process, real Redis, real workers, the sandbox.

Keys are made with `songqueue keys create`, as an operator would; every call is real HTTP.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests
import stack

from tests.support.console import console_login

pytestmark = pytest.mark.integration


@dataclass
class Api:
    url: str
    stack_: object

    def key(self, *flags: str) -> str:
        done = self.stack_.cli("keys", "create", "--name", f"k{uuid.uuid4().hex[:6]}", "--json", *flags)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["key"]

    def call(self, method: str, path: str, key: str | None = None, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kw)


@pytest.fixture
def start_api(make_stack) -> Iterator[Callable[..., Api]]:
    procs = []

    def start(workers: bool = True, **overrides: str) -> Api:
        built = make_stack(**overrides)
        if workers:
            built.start_worker()
        proc, url = stack.start_api(built.env, built.tmp / "api.log")
        procs.append(proc)
        return Api(url, built)

    yield start
    for proc in procs:
        stack.stop(proc)


def _prompt() -> str:
    return f"api test {uuid.uuid4().hex[:8]}"


def _events(response: requests.Response) -> Iterator[tuple[str, dict]]:
    name = None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name:
            yield name, json.loads(line[6:])


def test_submit_follow_events_and_download(start_api):
    api = start_api()
    key = api.key("--scopes", "submit,read")
    body = {"provider": "udio", "request": {"prompt": _prompt(), "seed": 3}}
    first = api.call("POST", "/v1/jobs", key, json=body, headers={"Idempotency-Key": "once"})
    assert first.status_code == 201, first.text
    job = first.json()
    assert first.headers["location"] == f"/v1/jobs/{job['id']}"
    again = api.call("POST", "/v1/jobs", key, json=body, headers={"Idempotency-Key": "once"})
    assert again.status_code == 200 and again.json()["id"] == job["id"]
    assert job["provider"] == "udio" and job["model"] == "udio32-v1.5" and job["links"]["self"] == f"/v1/jobs/{job['id']}"

    with api.call("GET", job["links"]["events"], key, stream=True) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        seen = list(_events(stream))
    states = [data["state"] for name, data in seen if name == "job"]
    assert seen[-1][0] == "end" and seen[-1][1]["state"] == "SUCCEEDED"
    assert states[-1] == "SUCCEEDED" and len(states) >= 3, states  # QUEUED or later, GENERATING..., SUCCEEDED

    done = api.call("GET", f"/v1/jobs/{job['id']}", key).json()
    audio = done["songs"][0]["audio"]
    assert audio["link"] == f"/v1/jobs/{job['id']}/songs/1/audio"
    whole = api.call("GET", audio["link"], key)
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/mpeg"
    assert whole.headers["etag"] == f'"{audio["sha256"]}"' == f'"{hashlib.sha256(whole.content).hexdigest()}"'
    part = api.call("GET", audio["link"], key, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == whole.content[:100]
    cover = api.call("GET", f"/v1/jobs/{job['id']}/songs/1/cover", key)
    assert cover.status_code == 200 and cover.headers["content-type"].startswith("image/")
    assert api.call("GET", f"/v1/jobs/{job['id']}/songs/3/audio", key).status_code == 404


def test_keys_tenants_and_errors(start_api):
    api = start_api(workers=False)  # jobs stay QUEUED: nothing runs them
    alpha = api.key("--tenant", "alpha", "--scopes", "submit,read", "--max-in-flight", "2")
    reader = api.key("--tenant", "alpha", "--scopes", "read")
    beta = api.key("--tenant", "beta")
    admin = api.key("--scopes", "admin")
    body = {"provider": "udio", "request": {"prompt": _prompt()}}

    none = api.call("POST", "/v1/jobs", json=body)
    assert none.status_code == 401 and none.headers["content-type"] == "application/problem+json"
    assert none.headers["www-authenticate"] == "Bearer"
    assert api.call("GET", "/v1/jobs", "sq_not-a-key").status_code == 401
    assert api.call("POST", "/v1/jobs", reader, json=body).status_code == 403

    bad = api.call("POST", "/v1/jobs", alpha, json={"provider": "udio", "request": {"prompt": "x", "seed": -5}})
    assert bad.status_code == 422
    assert {"field": "request.seed", "rule": "Input should be greater than or equal to -1"} in bad.json()["errors"]
    unknown = api.call("POST", "/v1/jobs", alpha, json={"provider": "nope", "request": {}})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "provider"
    hook = api.call("POST", "/v1/jobs", alpha, json={**body, "callback_url": "ftp://x"})
    assert hook.status_code == 422 and hook.json()["errors"][0]["field"] == "callback_url"

    jobs = [api.call("POST", "/v1/jobs", alpha, json={"provider": "udio", "request": {"prompt": _prompt()}}).json()
            for _ in range(2)]
    # Over the key's in-flight cap a job is accepted and waits for the workers' admission
    # (tests/integration/test_http_api_key_limits.py); nothing is refused at the door.
    third = api.call("POST", "/v1/jobs", alpha, json=body)
    assert third.status_code == 201, third.text
    other = api.call("POST", "/v1/jobs", beta, json=body).json()

    assert api.call("GET", f"/v1/jobs/{other['id']}", alpha).status_code == 404
    assert api.call("GET", f"/v1/jobs/{other['id']}", admin).json()["tenant"] == "beta"
    assert api.call("GET", f"/v1/jobs/{jobs[0]['id']}", reader).json()["tenant"] == "alpha"

    page = api.call("GET", "/v1/jobs?limit=1", reader).json()
    second = api.call("GET", f"/v1/jobs?limit=1&cursor={page['next_cursor']}", reader).json()
    assert [page["jobs"][0]["id"], second["jobs"][0]["id"]] == [third.json()["id"], jobs[1]["id"]]
    assert {j["id"] for j in api.call("GET", "/v1/jobs?state=QUEUED", admin).json()["jobs"]} >= {other["id"], jobs[0]["id"]}

    cancelled = api.call("DELETE", f"/v1/jobs/{jobs[0]['id']}", alpha)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED"
    assert api.call("DELETE", f"/v1/jobs/{jobs[0]['id']}", alpha).status_code == 409
    assert api.call("POST", f"/v1/jobs/{jobs[0]['id']}/retry", alpha).status_code == 409
    assert api.call("DELETE", f"/v1/jobs/{other['id']}", alpha).status_code == 404


def test_health_limits_and_the_cli_still_without_keys(start_api):
    api = start_api(workers=False)
    assert api.call("GET", "/healthz").json() == {"status": "ok"}
    assert api.call("GET", "/readyz").json() == {"status": "ready"}
    key = api.key("--tenant", "default")
    fresh = api.key()  # no --tenant: a tenant of its own, which sees none of the CLI's jobs
    big = api.call("POST", "/v1/jobs", key, data=b"x" * (2 << 20), headers={"Content-Type": "application/json"})
    assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"
    chunked = api.call("POST", "/v1/jobs", key, data=iter([b"x" * (1 << 19)] * 4),
                       headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413

    done = api.stack_.cli("submit", "--prompt", _prompt(), "--json")
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["id"]
    assert api.call("GET", f"/v1/jobs/{job_id}", key).json()["tenant"] == "default"
    assert api.call("GET", f"/v1/jobs/{job_id}", fresh).status_code == 404


def test_the_notify_hook_takes_chunked_bodies(start_api):
    api = start_api(workers=False)
    chunked = api.call("POST", "/hooks/udio", data=iter([b'{"task_id": ', b'"no-such-task", "status": "SUCCESS"}']),
                       headers={"Content-Type": "application/json"})
    assert chunked.status_code == 404 and chunked.json() == {"error": "unknown task"}
    assert api.call("POST", "/hooks/udio", data=b"not json").status_code == 400


def test_playlists_list_run_and_files(start_api, tmp_path):
    folder = tmp_path / "playlists"
    folder.mkdir()
    (folder / "api-mix.toml").write_text('cron = "0 6 * * *"\nprompts = ["api mix {index}"]\ncount = 1\n')
    api = start_api(playlists_dir=str(folder))
    admin, reader = api.key("--scopes", "admin"), api.key("--tenant", "default", "--scopes", "read")
    listed = api.call("GET", "/v1/playlists", reader).json()
    assert [p["name"] for p in listed["playlists"]] == ["api-mix"] and listed["problems"] == []
    assert api.call("POST", "/v1/playlists/api-mix/runs", reader).status_code == 403
    assert api.call("POST", "/v1/playlists/nope/runs", admin).status_code == 404
    started = api.call("POST", "/v1/playlists/api-mix/runs", admin)
    assert started.status_code == 201, started.text
    path = f"/v1/playlists/api-mix/runs/{started.json()['id']}"
    assert started.headers["location"] == path
    run = stack.wait_until(lambda: (r := api.call("GET", path, reader).json())["state"] in ("SUCCEEDED", "FAILED") and r,
                           120, "the playlist run to end")
    assert run["state"] == "SUCCEEDED" and run["m3u8"] == f"{path}/playlist.m3u8"
    m3u8 = api.call("GET", run["m3u8"], reader)
    assert m3u8.status_code == 200 and m3u8.text.startswith("#EXTM3U")
    song = run["songs"][0]  # a Udio job makes two
    assert song["audio"].startswith(f"/v1/jobs/{song['job_id']}/songs/")

    # The console's playlists page shows the definition, the run, its files and a player.
    console = requests.Session()
    assert console_login(console, api.url, reader).url.endswith("/console/jobs")
    page = console.get(f"{api.url}/console/playlists", timeout=30)
    assert page.status_code == 200 and "0 6 * * *" in page.text
    assert f'data-run="{run["id"]}"' in page.text and "state-SUCCEEDED" in page.text
    assert f'href="{run["m3u8"]}"' in page.text and f'href="{run["json"]}"' in page.text
    assert f'<audio controls preload="none" src="{song["audio"]}">' in page.text
    played = console.get(f"{api.url}{song['audio']}", timeout=30)  # the cookie reaches the song, as <audio> would
    assert played.status_code == 200 and played.headers["content-type"] == "audio/mpeg" and played.content[:3] == b"ID3"
    assert requests.get(f"{api.url}/console/playlists", timeout=30, allow_redirects=False).status_code == 303
