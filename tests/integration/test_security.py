"""Secrets stay secret, storage keys stay safe, downloads stay on http(s)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
import requests
import stack

from producer.core import derived_keys
from tests.integration.test_observability import _start_metrics
from tests.support.console import console_login
from tests.support.http_fixture import LocalServer
from tests.support.ports import start_flower

pytestmark = pytest.mark.integration

FLOWER_AUTH = ("ops", "flower-test-password")
_BODY = re.compile(r'\\\\?"body\\\\?": \\\\?"([A-Za-z0-9+/=]+)')


def _decoded_bodies(monitor_text: str) -> str:
    """Celery message bodies travel base64-encoded on Redis: decode them to search them."""
    out = []
    for encoded in _BODY.findall(monitor_text):
        try:
            out.append(base64.b64decode(encoded).decode("utf-8", "replace"))
        except ValueError:
            continue
    return "\n".join(out)


def _api_surfaces(s, tmp_path: Path, job_id: str) -> tuple[str, str, str]:
    """(what `songqueue api` answered, the API key used, the API's log) for a few calls:
    anonymous and wrong-scope calls refused at the edge, an admin's view of a job."""
    log = tmp_path / "api.log"
    proc, url = stack.start_api(s.env, log)
    try:
        made = s.cli("keys", "create", "--name", "leak", "--scopes", "admin", "--json")
        secret = json.loads(made.stdout)["key"]
        answers = [
            requests.post(f"{url}/v1/uploads", data=b"x" * 1000, timeout=10),
            requests.post(f"{url}/v1/jobs", json={"provider": "udio"}, timeout=10,
                          headers={"Authorization": "Bearer sq_not_a_key"}),
            requests.get(f"{url}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {secret}"}, timeout=10),
            requests.post(f"{url}/hooks/udio?job={job_id}&sig={'0' * 64}", json={"task_id": "t"}, timeout=10),
        ]
        assert [a.status_code for a in answers] == [401, 401, 200, 403]
        # The console: its cookies (a session id, never the key) and its pages.
        console = requests.Session()
        answers.append(console_login(console, url, secret))
        answers += [console.get(f"{url}{path}", timeout=10)
                    for path in ("/console/jobs", f"/console/jobs/{job_id}", "/console/submit")]
        assert [a.status_code for a in answers[4:]] == [200, 200, 200, 200]
        cookies = [json.dumps(r.headers.get("set-cookie")) for a in answers[4:] for r in (*a.history, a)]
        text = "\n".join([*(json.dumps(dict(a.headers)) + a.text for a in answers), *cookies])
    finally:
        stack.stop(proc)
    return text, secret, log.read_text(errors="replace")


def test_api_key_never_leaks(make_stack, sandbox, tmp_path):
    master = "cb-master-SECRET-0123456789"
    s = make_stack(max_transient_errors="3", callback_secret=master)
    key = s.env["SONGQUEUE_UDIO_API_KEY"]
    receiver = LocalServer()
    receiver.__enter__()
    hook = receiver.route("/hook")
    broker_url = s.env["SONGQUEUE_BROKER_URL"]
    monitor = subprocess.Popen(
        [str(Path(stack.redis_binary()).with_name("redis-cli")), "-u", broker_url, "monitor"],
        stdout=open(tmp_path / "monitor.txt", "w"),  # noqa: SIM115 - the child owns the file until it stops
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    flower, flower_url = start_flower(s.env, tmp_path / "flower.log", f"--basic-auth={':'.join(FLOWER_AUTH)}")
    try:
        s.start_worker()
        queue = s.queue()
        tag = uuid.uuid4().hex[:6]
        prompts = [f"leak check {tag}", f"leak fail {tag} sandbox:failure", f"leak flaky {tag} sandbox:fetch_500=2",
                   f"leak 403 {tag} sandbox:dl_403", f"leak 401 {tag}"]
        # Every job calls back, so callbacks (headers and bodies) are searched too.
        ids = [queue.submit({"prompt": p}, callback_url=hook).id for p in prompts[:4]]
        # One job with a wrong key: the upstream's refusal must not echo ours.
        wrong = make_stack(udio_api_key="sk-wrongKEYwrongKEY0123456789abcdef")
        wrong.start_worker(concurrency=1)
        wrong_id = wrong.queue().submit({"prompt": prompts[4]}).id
        records = [queue.wait(i, timeout=90) for i in ids] + [wrong.queue().wait(wrong_id, timeout=90)]
        assert [r.state.value for r in records] == ["SUCCEEDED", "FAILED", "SUCCEEDED", "FAILED", "FAILED"]

        flower_api = requests.get(f"{flower_url}/api/tasks", auth=FLOWER_AUTH, timeout=10)
        assert flower_api.status_code == 200
        tasks = flower_api.json()
        assert any(ids[0] in (t.get("args") or "") for t in tasks.values()), "Flower saw the job's tasks"
        pages = [requests.get(f"{flower_url}/task/{uuid_}", auth=FLOWER_AUTH, timeout=10).text
                 for uuid_ in list(tasks)[:20]]
        assert requests.get(f"{flower_url}/api/tasks", timeout=10).status_code == 401
        metrics, metrics_url = _start_metrics(s.env)
        try:
            scraped = requests.get(metrics_url, timeout=10).text
        finally:
            stack.stop(metrics)
        stack.wait_until(lambda: len(receiver.requests) >= len(ids), 60, "a callback for every job")
        # The edge's surfaces: the HTTP API's answers (401 before any body, 403, job views)
        # and its log, with an API key of its own in play.
        api_answers, api_secret, api_log = _api_surfaces(s, tmp_path, ids[0])
    finally:
        stack.stop(flower)
        stack.stop(monitor)
        receiver.close()
    monitor_text = (tmp_path / "monitor.txt").read_text(errors="replace")
    assert ids[0] in _decoded_bodies(monitor_text), "the monitor captured the task messages"
    store = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])
    store_dump = "\n".join(str(store.get(k)) for k in store.keys("*") if store.type(k) == b"string")
    cli_status = (s.cli("status", ids[1]).stdout + s.cli("list").stdout + s.cli("stats", "--json").stdout
                  + s.cli("callback-secret", hook).stdout)
    callbacks = "\n".join(json.dumps(headers) + body.decode() for _, _, headers, body in receiver.requests)
    haystacks = {
        "broker traffic": monitor_text + _decoded_bodies(monitor_text),
        "flower api": json.dumps(tasks),
        "flower task pages": "\n".join(pages),
        "worker logs": s.worker_logs() + wrong.worker_logs(),
        "job records and errors": store_dump + json.dumps([r.model_dump(mode="json") for r in records]),
        "cli output": cli_status,
        "callbacks": callbacks,
        "http api answers and log": api_answers + api_log,
    }
    # Keys derived from the master (producer/core/derived_keys.py) are secrets too: the notify
    # hook's key must appear nowhere (a receiver's own key is what `callback-secret` prints).
    hook_key = derived_keys.derive(master.encode(), derived_keys.NOTIFY_HOOK)
    derived = [hook_key.hex(), base64.b64encode(hook_key).decode()]
    for where, text in haystacks.items():
        # Each place searched holds this test's jobs, so a clean result means something.
        assert any(i in text for i in [*ids, wrong_id]), f"{where} has none of this test's jobs"
        assert key not in text and "sk-wrongKEY" not in text, f"the API key leaked into {where}"
        assert master not in text, f"the callback secret leaked into {where}"
        assert not any(d in text for d in derived), f"the notify hook's key leaked into {where}"
        if where != "cli output":  # the one place a key is shown: when it is made
            assert api_secret not in text, f"an HTTP API key leaked into {where}"
    # Views that leave the fleet (callbacks to a tenant's service, the HTTP API's answers)
    # carry links, never where an object lies: the storage folder or an object's key.
    storage_root = urlparse(s.env["SONGQUEUE_STORAGE_URL"]).path
    stored = [o.key for r in records for song in r.songs for o in (song.audio, song.cover) if o is not None]
    assert stored, "the jobs stored songs: the search below has something to find"
    for where, text in (("callbacks", callbacks), ("http api answers", api_answers)):
        assert storage_root not in text, f"a server path leaked into {where}"
        assert not any(k in text for k in stored), f"a bucket key leaked into {where}"
    assert "/songs/1/audio" in callbacks, "the callbacks link the songs on the API"
    # The metrics page names no job, so it is searched for the secrets alone (it did answer).
    assert "songqueue_jobs" in scraped and key not in scraped and master not in scraped
    # Both keys reached the upstream with this test's own submits (the sandbox is shared, so
    # only requests carrying this test's tag count), so the search above had something to find.
    logged = requests.get(f"{sandbox.url}/_sandbox/requests?limit=2000", timeout=10).json()["requests"]
    ours = [json.dumps(r["headers"]) for r in logged if tag in (r.get("body") or "")]
    assert any(key in headers for headers in ours) and any("sk-wrongKEY" in headers for headers in ours)


def test_hostile_titles_never_shape_storage_keys(make_stack):
    s = make_stack()
    s.start_worker()
    queue = s.queue()
    jobs = [queue.submit({"prompt": f"titles {uuid.uuid4().hex[:6]} sandbox:{d}"}).id
            for d in ("hostile_titles", "long_titles")]
    records = [queue.wait(j, timeout=60) for j in jobs]

    root = Path(urlparse(s.env["SONGQUEUE_STORAGE_URL"]).path).resolve()
    titles = [song.title for r in records for song in r.songs]
    assert titles[:2] == ["../../etc/passwd", "CON"] and titles[3] == "雨" * 300
    for record in records:
        assert record.state.value == "SUCCEEDED", record.error
        for song in record.songs:
            for obj in (song.audio, song.cover):
                path = Path(urlparse(obj.uri).path).resolve()
                assert path.is_relative_to(root) and path.is_file()
                assert song.title not in obj.key and obj.key.isascii()
        manifest = json.loads(Path(urlparse(record.manifest.uri).path).read_text())
        assert [m["title"] for m in manifest["songs"]] == [song.title for song in record.songs]
    assert not (root.parent / "etc").exists()
