"""The sandbox gateway over real HTTP: a subprocess, talked to with requests.

Every wait is a poll of a condition with a deadline; nothing sleeps to
synchronise.
"""

from __future__ import annotations

import http.client
import io
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mutagen.mp3
import pytest
import requests

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
API_KEY = "test-sandbox-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SUBMIT_PATHS = ("/udio/generate-proxy", "/udio/submit/music")
GENERATION_TIME = 1.0
SONG_DURATION = 2.0

# Key sets of seed 001's fetch answer, which the sandbox mirrors.
TASK_KEYS = {
    "task_id", "notify_hook", "action", "status", "fail_reason",
    "submit_time", "start_time", "finish_time", "progress", "data",
}
SONG_KEYS = {
    "id", "tags", "liked", "likes", "plays", "title", "artist", "lyrics", "prompt", "user_id",
    "disliked", "duration", "error_id", "finished", "song_path", "user_tags", "created_at",
    "error_code", "error_type", "image_path", "video_path", "attribution", "description",
    "publishable", "artist_image", "error_detail", "published_at", "generation_id",
    "replaced_tags", "original_song_path", "audio_conditioning_type",
}


def start_sandbox(args: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m sandbox`` and return it with its base URL (from its first line)."""
    stderr = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    stderr.close()
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    try:
        first = lines.get(timeout=20)
    except queue.Empty:
        proc.kill()
        pytest.fail(f"sandbox printed nothing within 20 s; stderr: {log.read_text()}")
    prefix = "sandbox listening on "
    assert first.startswith(prefix), f"unexpected first line {first!r}; stderr: {log.read_text()}"
    return proc, first[len(prefix):].strip()


@pytest.fixture(scope="module")
def sbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("sandbox") / "stderr.log"
    proc, url = start_sandbox(
        ["--api-key", API_KEY, "--generation-time", str(GENERATION_TIME), "--song-duration", str(SONG_DURATION)],
        log,
    )
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def unique(prompt: str) -> str:
    return f"{prompt} {uuid.uuid4().hex[:8]}"


def submit(base: str, prompt: str, path: str = SUBMIT_PATHS[0], **params: Any) -> requests.Response:
    return requests.post(base + path, json={"gen_params": {"prompt": prompt, "lyrics": "", **params}},
                         headers=AUTH, timeout=10)


def submit_ok(base: str, prompt: str, path: str = SUBMIT_PATHS[0]) -> str:
    resp = submit(base, prompt, path)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["code"] == "success" and body["message"] == ""
    uuid.UUID(body["data"])
    return body["data"]


def fetch(base: str, task_id: str) -> dict[str, Any]:
    resp = requests.get(f"{base}/udio/fetch/{task_id}", headers=AUTH, timeout=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["code"] == "success"
    return body["data"]


def wait_terminal(base: str, task_id: str, seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        data = fetch(base, task_id)
        if seen is not None:
            seen.append(data)
        return data if data["status"] in ("SUCCESS", "FAILURE") else None

    return wait_for(f"task {task_id} to end", done, timeout=10)


def songs_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["songs"] if "songs" in data else data["data"]["songs"]


def stats(base: str) -> dict[str, Any]:
    return requests.get(base + "/_sandbox/stats", timeout=10).json()


def finished_task(base: str, prompt: str) -> tuple[str, dict[str, Any]]:
    task_id = submit_ok(base, prompt)
    data = wait_terminal(base, task_id)
    assert data["status"] == "SUCCESS"
    return task_id, data


# --- auth and validation ---------------------------------------------------------


def test_wrong_or_missing_key_is_401(sbx: str) -> None:
    body = {"gen_params": {"prompt": "x"}}
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "nope"}):
        resp = requests.post(sbx + SUBMIT_PATHS[0], json=body, headers=headers, timeout=10)
        assert resp.status_code == 401
        assert resp.json() == {"code": "unauthorized", "message": "invalid api key", "data": None}
    assert requests.get(f"{sbx}/udio/fetch/{uuid.uuid4()}", timeout=10).status_code == 401
    # Seed 002 shows the bare key without "Bearer"; the vendors document Bearer, and a relay
    # that checks the scheme refuses the bare key (issue 23): so does the sandbox.
    bare = requests.post(sbx + SUBMIT_PATHS[1], json={"gen_params": {"prompt": unique("bare")}},
                         headers={"Authorization": API_KEY}, timeout=10)
    assert bare.status_code == 401


def test_bad_requests_are_400_and_unknown_task_404(sbx: str) -> None:
    for raw in (b"not json", b'{"prompt": "x"}', b'{"gen_params": {"lyrics": ""}}'):
        resp = requests.post(sbx + SUBMIT_PATHS[0], data=raw, headers=AUTH, timeout=10)
        assert resp.status_code == 400
        assert resp.json()["code"] == "invalid_request" and resp.json()["message"]
    typo = submit(sbx, "x sandbox:no_such_fault")
    assert typo.status_code == 400 and "no_such_fault" in typo.json()["message"]
    missing = requests.get(f"{sbx}/udio/fetch/{uuid.uuid4()}", headers=AUTH, timeout=10)
    assert missing.status_code == 404 and missing.json()["data"] is None


# --- the happy path ----------------------------------------------------------------


@pytest.mark.parametrize("path", SUBMIT_PATHS)
def test_dialect_runs_to_success_with_two_seed_shaped_songs(sbx: str, path: str) -> None:
    prompt = unique("dialect")
    task_id = submit_ok(sbx, prompt, path)
    seen: list[dict[str, Any]] = []
    data = wait_terminal(sbx, task_id, seen)

    assert data["status"] == "SUCCESS" and data["progress"] == "100%"
    assert set(data) == TASK_KEYS
    assert data["action"] == "udio-generate" and data["task_id"] == task_id
    assert data["submit_time"] <= data["start_time"] <= data["finish_time"]
    running = [d for d in seen if d["status"] not in ("SUCCESS", "FAILURE")]
    assert running, "never observed the task running"
    assert all(d["status"] in ("SUBMITTED", "IN_PROGRESS") and d["data"]["songs"] == [] for d in running)
    progress = [int(d["progress"].rstrip("%")) for d in seen]
    assert progress == sorted(progress)

    songs = data["data"]["songs"]
    assert len(songs) == 2
    for song in songs:
        assert set(song) == SONG_KEYS
        assert song["finished"] is True and song["generation_id"] == task_id
        assert song["error_code"] is None and song["error_type"] is None and song["error_detail"] is None
        assert " " in song["title"] and not song["title"].isascii()
        assert isinstance(song["tags"], list) and song["prompt"] == prompt
        uuid.UUID(song["id"])
    assert songs[0]["id"] != songs[1]["id"]

    st = stats(sbx)
    assert st["tasks"][task_id]["dialect"] == ("302ai" if path == SUBMIT_PATHS[0] else "openai-hk")
    assert st["tasks"][task_id]["status"] == "SUCCESS"
    assert st["submits_by_prompt"][prompt] == 1
    assert st["fetches_by_task"][task_id] == len(seen)


def test_song_downloads_byte_for_byte_and_matches_duration(sbx: str) -> None:
    task_id, data = finished_task(sbx, unique("download"))
    for song in songs_of(data):
        url = song["song_path"]
        assert "%2520" in url and url.endswith(".mp3")
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "audio/mpeg"
        assert int(resp.headers["Content-Length"]) == len(resp.content)
        length = mutagen.mp3.MP3(io.BytesIO(resp.content)).info.length
        assert abs(length - song["duration"]) < 0.05
        assert abs(song["duration"] - SONG_DURATION) < 0.05
    # The server saw the path exactly as song_path spells it: no decoding on the way.
    raw_paths = [r["path"] for r in requests.get(sbx + "/_sandbox/requests?limit=50", timeout=10).json()["requests"]]
    for song in songs_of(data):
        assert urlsplit(song["song_path"]).path in raw_paths
    assert stats(sbx)["downloads_by_task"][task_id] == 2


def test_once_decoded_song_path_is_refused_and_counted(sbx: str) -> None:
    _, data = finished_task(sbx, unique("badpath"))
    before = stats(sbx)["downloads_bad_path"]
    decoded_once = songs_of(data)[0]["song_path"].replace("%25", "%")
    assert requests.get(decoded_once, timeout=10).status_code == 404
    assert stats(sbx)["downloads_bad_path"] == before + 1


def test_covers_are_distinct_pngs(sbx: str) -> None:
    _, data = finished_task(sbx, unique("cover"))
    images = []
    for song in songs_of(data):
        resp = requests.get(song["image_path"], timeout=10)
        assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/png"
        png = resp.content
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", png[16:24])
        assert (width, height) == (64, 64)
        idat_len = struct.unpack(">I", png[33:37])[0]
        assert png[37:41] == b"IDAT"
        assert len(zlib.decompress(png[41 : 41 + idat_len])) == 64 * (1 + 64 * 3)
        images.append(png)
    assert images[0] != images[1]


def test_stats_count_exactly_one_submit_per_prompt(sbx: str) -> None:
    prompts = [unique("once"), unique("once")]
    before = stats(sbx)
    for prompt in prompts:
        submit_ok(sbx, prompt)
    after = stats(sbx)
    assert after["submits"] == before["submits"] + 2
    assert after["submit_requests"] == before["submit_requests"] + 2
    assert all(after["submits_by_prompt"][p] == 1 for p in prompts)


# --- directives --------------------------------------------------------------------


def test_submit_429_then_success(sbx: str) -> None:
    prompt = unique("sandbox:submit_429=2 limited")
    for _ in range(2):
        resp = submit(sbx, prompt)
        assert resp.status_code == 429
        assert resp.headers["Retry-After"] == "1"
        assert resp.json()["data"] is None
    submit_ok(sbx, prompt)
    assert stats(sbx)["submits_by_prompt"][prompt] == 1


def test_submit_error_and_500_html(sbx: str) -> None:
    resp = submit(sbx, unique("sandbox:submit_error=quota_exceeded_for_key"))
    assert resp.status_code == 200
    assert resp.json() == {"code": "error", "message": "quota exceeded for key", "data": None}
    html = submit(sbx, unique("sandbox:submit_500"))
    assert html.status_code == 500 and html.headers["Content-Type"].startswith("text/html")


def test_failure_ends_in_failure_without_songs(sbx: str) -> None:
    data = wait_terminal(sbx, submit_ok(sbx, unique("sandbox:failure")))
    assert data["status"] == "FAILURE"
    assert data["fail_reason"] == "sandbox: generation failed (content policy)"
    assert songs_of(data) == []


def test_flat_puts_songs_directly_under_data(sbx: str) -> None:
    data = wait_terminal(sbx, submit_ok(sbx, unique("sandbox:flat")))
    assert "data" not in data and len(data["songs"]) == 2


def test_omit_running_songs_leaves_out_the_container_until_done(sbx: str) -> None:
    task_id = submit_ok(sbx, unique("sandbox:omit_running_songs sandbox:gen_time=5"))
    running = fetch(sbx, task_id)
    assert running["status"] in ("SUBMITTED", "IN_PROGRESS") and "data" not in running and "songs" not in running


def test_stagger_finishes_song_one_first(sbx: str) -> None:
    task_id = submit_ok(sbx, unique("sandbox:stagger sandbox:gen_time=2"))

    def half_done() -> dict[str, Any] | None:
        data = fetch(sbx, task_id)
        return data if songs_of(data) else None

    data = wait_for("the first song to finish", half_done, timeout=10)
    assert data["status"] == "IN_PROGRESS"
    first, second = songs_of(data)
    assert first["finished"] is True and first["song_path"]
    assert second["finished"] is False
    assert requests.get(first["song_path"], timeout=10).status_code == 200
    final = wait_terminal(sbx, task_id)
    assert final["status"] == "SUCCESS" and all(s["finished"] for s in songs_of(final))


def test_dl_truncate_sends_half_the_body_then_full(sbx: str) -> None:
    _, data = finished_task(sbx, unique("sandbox:dl_truncate"))
    url = urlsplit(songs_of(data)[0]["song_path"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", url.path)
    resp = conn.getresponse()
    declared = int(resp.getheader("Content-Length"))
    with pytest.raises(http.client.IncompleteRead) as short:
        resp.read()
    assert len(short.value.partial) == declared // 2
    conn.close()
    full = requests.get(songs_of(data)[0]["song_path"], timeout=10)  # only the first download is cut
    assert full.status_code == 200 and len(full.content) == declared


def test_dl_reset_breaks_the_download(sbx: str) -> None:
    _, data = finished_task(sbx, unique("sandbox:dl_reset"))
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(songs_of(data)[0]["song_path"], timeout=10)


def test_size_mb_streams_a_valid_large_file(sbx: str) -> None:
    _, data = finished_task(sbx, unique("sandbox:size_mb=0.5"))
    song = songs_of(data)[0]
    resp = requests.get(song["song_path"], timeout=10)
    assert len(resp.content) >= 512 * 1024
    assert abs(mutagen.mp3.MP3(io.BytesIO(resp.content)).info.length - song["duration"]) < 0.05


def test_global_fetch_rate_via_config(sbx: str) -> None:
    task_id = submit_ok(sbx, unique("rates"))
    try:
        config = requests.post(sbx + "/_sandbox/config", json={"fetch_500_rate": 1.0}, timeout=10).json()
        assert config["fetch_500_rate"] == 1.0
        resp = requests.get(f"{sbx}/udio/fetch/{task_id}", headers=AUTH, timeout=10)
        assert resp.status_code == 500 and resp.headers["Content-Type"].startswith("text/html")
    finally:
        requests.post(sbx + "/_sandbox/config", json={"fetch_500_rate": 0.0}, timeout=10)
    assert requests.get(sbx + "/_sandbox/config", timeout=10).json()["fetch_500_rate"] == 0.0
    assert requests.post(sbx + "/_sandbox/config", json={"nope": 1}, timeout=10).status_code == 400


# --- process behaviour --------------------------------------------------------------


def test_env_api_key_and_clean_sigterm(tmp_path: Path) -> None:
    proc, url = start_sandbox([], tmp_path / "stderr.log", env={"SONGQUEUE_SANDBOX_API_KEY": "from-env"})
    try:
        resp = requests.post(url + SUBMIT_PATHS[0], json={"gen_params": {"prompt": "env"}},
                             headers={"Authorization": "Bearer from-env"}, timeout=10)
        assert resp.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
