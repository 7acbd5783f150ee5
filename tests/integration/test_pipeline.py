"""A job end to end: real Redis, real Celery worker processes, the sandbox over HTTP, the CLI."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
import stack
from mutagen.mp3 import MP3

from tests.conftest import BOTH_BROKERS

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("broker", BOTH_BROKERS, indirect=True)]


def _prompt(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def _path(uri: str) -> Path:
    return Path(urlparse(uri).path)


def test_job_through_the_cli_stores_two_songs_and_covers(make_stack, sandbox):
    s = make_stack()
    s.start_worker(concurrency=2)
    prompt = _prompt("a slow ballad about tides")

    result = s.cli("submit", "--prompt", prompt, "--wait", "--timeout", "60", "--json")

    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["state"] == "SUCCEEDED" and view["progress"] == 100 and view["error"] is None
    assert len(view["songs"]) == 2
    record = s.queue().status(view["id"])
    for song_view, song in zip(view["songs"], record.songs):
        audio = _path(song_view["audio"]["uri"]).read_bytes()
        served = requests.get(song.song_path, timeout=10).content
        # Stored = the upstream's bytes plus ID3 tags; both checksums are on the record.
        assert hashlib.sha256(audio).hexdigest() == song_view["audio"]["sha256"]
        assert song.audio.upstream_sha256 == hashlib.sha256(served).hexdigest()
        assert len(audio) == song_view["audio"]["size"]
        assert abs(MP3(_path(song_view["audio"]["uri"])).info.length - song_view["duration"]) < 0.1
        cover = _path(song_view["cover"]["uri"])
        assert cover.suffix == ".png" and cover.read_bytes().startswith(b"\x89PNG")
        assert hashlib.sha256(cover.read_bytes()).hexdigest() == hashlib.sha256(
            requests.get(song.image_path, timeout=10).content).hexdigest()
        # Titles are not used in paths: the key is ours.
        assert song.title not in song_view["audio"]["uri"]
    manifest = json.loads(_path(record.manifest.uri).read_text())
    assert manifest["job_id"] == view["id"] and manifest["upstream_task_id"] == record.upstream_task_id
    assert [t["state"] for t in manifest["transitions"]][:3] == ["QUEUED", "SUBMITTING", "SUBMITTED"]
    stats = sandbox.stats()
    assert stats["submits_by_prompt"][prompt] == 1
    assert stats["downloads_bad_path"] == 0


def test_a_song_takes_one_download_run_and_the_last_one_finalizes(make_stack, sandbox):
    """Task runs per job: one download run per song (its cover, then its MP3), and the run
    that stores the job's last object finalizes it: no finalize run of its own."""
    s = make_stack()
    s.start_worker(concurrency=2)
    queue = s.queue()
    record = queue.wait(queue.submit({"prompt": _prompt("one run per song")}).id, timeout=60)
    assert record.state.value == "SUCCEEDED" and record.manifest is not None
    assert len(record.songs) == 2 and all(song.audio and song.cover for song in record.songs)

    def runs() -> list[str]:
        return re.findall(r"Task (songqueue\.\w+)\[[0-9a-f-]+\] succeeded", s.worker_logs())

    # Celery logs a run once it returned, just after the job turned SUCCEEDED.
    stack.wait_until(lambda: runs().count("songqueue.download") >= 2, 30, "both download runs to be logged")
    assert runs().count("songqueue.download") == 2, runs()
    assert "songqueue.finalize" not in runs(), runs()
    # Each song's cover was fetched once: the MP3's tag took it from storage.
    assert sandbox.stats()["downloads_by_task"][record.upstream_task_id] == 4


def test_waiting_on_the_upstream_holds_no_worker_slot(make_stack, sandbox):
    """N jobs on one process with concurrency 1 generate upstream side by side: the worker's
    only slot is free while a job waits (bench/ measures how much time that saves)."""
    n, t = 8, 5.0
    s = make_stack()
    s.start_worker(concurrency=1)
    queue = s.queue()
    prompts = [_prompt(f"song {i} sandbox:gen_time={t}") for i in range(n)]
    handles = [queue.submit({"prompt": p}) for p in prompts]
    records = [queue.wait(h.id, timeout=n * t) for h in handles]

    assert [r.state.value for r in records] == ["SUCCEEDED"] * n
    tasks = sandbox.stats()["tasks"]
    spans = [(tasks[r.upstream_task_id]["submitted_at"], tasks[r.upstream_task_id]["finished_at"]) for r in records]
    # Each upstream task after the first was submitted while an earlier one was still
    # generating; a worker that held its one slot while waiting would overlap none.
    spans.sort()
    for i, (start, _) in enumerate(spans[1:], 1):
        assert start < max(end for _, end in spans[:i]), f"task {i} waited for the slot: {spans}"


def test_upstream_failure_fails_the_job_with_its_reason(make_stack, sandbox):
    s = make_stack()
    s.start_worker()
    prompt = _prompt("doomed sandbox:failure")

    result = s.cli("submit", "--prompt", prompt, "--wait", "--timeout", "60", "--json")

    assert result.returncode == 1
    view = json.loads(result.stdout)
    assert view["state"] == "FAILED"
    assert view["error"]["code"] == "upstream_failure"
    assert "content policy" in view["error"]["message"]
    assert sandbox.stats()["submits_by_prompt"][prompt] == 1


def test_cancel_stops_polling(make_stack, sandbox):
    s = make_stack(poll_max_interval="1")
    s.start_worker(concurrency=1)
    queue = s.queue()
    handle = queue.submit({"prompt": _prompt("endless sandbox:never_finish")})
    record = stack.wait_until(
        lambda: (r := queue.status(handle.id)).state.value == "GENERATING" and r, 30, "the job to generate")

    result = s.cli("cancel", handle.id)

    assert result.returncode == 0 and "CANCELLED" in result.stdout
    fetches_at_cancel = sandbox.stats()["fetches_by_task"][record.upstream_task_id]
    # Let the worker run a whole other job: any poll of the cancelled one still queued
    # at cancel time has run by then, and no new one may follow it.
    other = queue.submit({"prompt": _prompt("after cancel")})
    assert queue.wait(other.id, timeout=60).state.value == "SUCCEEDED"
    assert queue.wait(handle.id, timeout=60).state.value == "CANCELLED"
    assert sandbox.stats()["fetches_by_task"][record.upstream_task_id] <= fetches_at_cancel + 1


def test_status_list_and_wait_commands(make_stack):
    s = make_stack()
    s.start_worker()
    submitted = s.cli("submit", "--prompt", _prompt("status check"), "--seed", "42", "--model", "udio130-v1.5")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()

    waited = s.cli("wait", job_id, "--timeout", "60")
    status = s.cli("status", job_id, "--json")
    listed = s.cli("list", "--state", "SUCCEEDED")

    assert waited.returncode == 0 and "SUCCEEDED" in waited.stdout
    view = json.loads(status.stdout)
    assert set(view) == {"id", "state", "progress", "provider", "model", "created_at", "updated_at", "cost", "error",
                         "songs", "expires_at"}
    assert view["expires_at"] == pytest.approx(record_end(s, job_id) + 30 * 24 * 3600)  # the default retention
    assert set(view["songs"][0]) == {"id", "title", "duration", "audio", "cover"}
    assert job_id in listed.stdout
    record = s.queue().status(job_id)
    assert record.request["seed"] == 42 and record.model == "udio130-v1.5"


def test_wait_timeout_exits_3_and_unknown_job_exits_2(make_stack):
    s = make_stack()
    s.start_worker()
    job_id = s.cli("submit", "--prompt", _prompt("slow sandbox:gen_time=30")).stdout.strip()

    assert s.cli("wait", job_id, "--timeout", "1").returncode == 3
    assert s.cli("status", "no-such-job").returncode == 2
    assert s.cli("cancel", job_id).returncode == 0


def record_end(s, job_id: str) -> float:
    """When the job entered its terminal state, from its record."""
    return s.queue().status(job_id).transitions[-1].at

