"""Scheduled playlists end to end: real celery beat and workers, the sandbox over HTTP, the CLI.

The beat test uses `every = "2s"` (a seconds schedule, meant for tests) so several slots
pass in a few seconds; cron slots go through the same claim.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest
import stack
from mutagen.id3 import ID3

from producer.core.models.playlist_run import PlaylistRun, RunState
from producer.core.playlists.definition import parse_definition
from producer.core.playlists.start import start_run
from producer.core.store.playlist_store import PlaylistStore

pytestmark = pytest.mark.integration


def _path(uri: str) -> Path:
    return Path(urlparse(uri).path)


def _entries(m3u8: Path) -> list[tuple[str, Path]]:
    """(EXTINF line, resolved song path) per entry of an extended M3U."""
    lines = m3u8.read_text(encoding="utf-8").splitlines()
    return [(lines[i], (m3u8.parent / lines[i + 1]).resolve()) for i, line in enumerate(lines)
            if line.startswith("#EXTINF:")]


def test_playlist_run_writes_a_playable_m3u8_and_lists_its_failures(make_stack, tmp_path):
    nonce = uuid.uuid4().hex[:8]
    defs = tmp_path / "defs"
    defs.mkdir()
    good = defs / "evening.toml"
    good.write_text(f"""
album = "Evening Mix"
prompts = ["evening {{index}} {nonce} sandbox:gen_time=0.5", "doomed {{index}} {nonce} sandbox:failure sandbox:gen_time=0.5"]
count = 3
min_success = 2
""")
    (defs / "broken.toml").write_text('every = "1m"\nprompts = ["x"]\nmin_success = "many"\n')
    s = make_stack(playlist_check_interval="0.5", playlists_dir=str(defs))
    s.start_worker(concurrency=2)

    result = s.cli("playlist", "run", str(good), "--wait", "--timeout", "60", "--json")

    assert result.returncode == 0, result.stderr
    assert "ended" in result.stderr  # the batch's progress bar
    view = json.loads(result.stdout)
    assert view["state"] == "SUCCEEDED" and view["trigger"] == "manual"
    assert (view["requests"], view["succeeded_requests"], len(view["songs"])) == (3, 2, 4)
    [failure] = view["failures"]
    assert failure["request_index"] == 2 and failure["state"] == "FAILED"
    assert "content policy" in failure["error"]["message"]
    m3u8 = _path(view["m3u8"])
    assert m3u8.parent.name == view["id"] and m3u8.parent.parent.name == "evening"
    entries = _entries(m3u8)
    assert m3u8.read_text(encoding="utf-8").startswith("#EXTM3U\n") and len(entries) == 4
    queue = s.queue()
    for (extinf, song), listed in zip(entries, view["songs"]):
        assert song == _path(listed["uri"]).resolve() and song.is_file()  # the relative path resolves
        assert re.fullmatch(r"#EXTINF:\d+,.+", extinf) and extinf.endswith("," + listed["title"])
        assert ID3(song)["TALB"].text == ["Evening Mix"]
    for job_id in (j["id"] for j in view["jobs"]):
        record = queue.status(job_id)
        assert (record.album, record.batch_id) == ("Evening Mix", view["id"])
    document = json.loads(_path(view["json"]).read_text(encoding="utf-8"))
    assert document["state"] == "SUCCEEDED" and len(document["songs"]) == 4
    assert document["failures"][0]["request"]["prompt"] == f"doomed 2 {nonce} sandbox:failure sandbox:gen_time=0.5"
    status = s.cli("playlist", "status", view["id"], "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["m3u8"] == view["m3u8"]

    # The same batch with min_success = 3 ends FAILED (exit 1), its playlist still written.
    strict = defs / "strict.toml"
    strict.write_text(good.read_text().replace("min_success = 2", "min_success = 3").replace("evening", "strict"))
    failed = s.cli("playlist", "run", str(strict), "--wait", "--timeout", "60", "--json")
    assert failed.returncode == 1, failed.stderr
    failed_view = json.loads(failed.stdout)
    assert failed_view["state"] == "FAILED" and failed_view["error"]["code"] == "too_few_songs"
    assert len(_entries(_path(failed_view["m3u8"]))) == 4

    listed = s.cli("playlist", "list", "--json")
    assert listed.returncode == 2  # broken.toml; the others are still listed
    assert "broken.toml: min_success:" in listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)["playlists"]}
    assert sorted(rows) == ["evening", "strict"]
    assert rows["evening"]["schedule"] is None and rows["evening"]["recent_runs"][0]["id"] == view["id"]
    assert s.cli("playlist", "status", "no-such-run").returncode == 2


def test_beat_runs_each_slot_once_across_a_restart_and_a_second_beat(make_stack, sandbox, tmp_path):
    nonce = uuid.uuid4().hex[:8]
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "tick.toml").write_text(
        f'every = "2s"\nprompts = ["tick {{datetime}} {{index}} {nonce} sandbox:gen_time=0.2"]\n')
    (defs / "broken.toml").write_text('every = "2s"\nprompts = ["x {nope}"]\n')
    s = make_stack(playlist_check_interval="0.5", playlists_dir=str(defs))
    s.start_worker(concurrency=2)
    queue = s.queue()
    store = PlaylistStore(queue.store.redis, queue.settings.key_prefix)

    def runs() -> list:
        return store.recent("tick", 1000)

    beats = []
    sends_before_restart = ""
    try:
        beats.append(stack.start_beat(s.env, s.tmp / "beat-a.log"))
        stack.wait_until(lambda: len(runs()) >= 2, 30, "two scheduled runs")
        sends_before_restart = (s.tmp / "beat-a.log").read_text()
        # SIGKILL: the schedule file keeps the last send it synced (at start), so the
        # restarted beat sends the current slot again at once.
        stack.kill(beats.pop())
        beats.append(stack.start_beat(s.env, s.tmp / "beat-a.log"))  # same schedule file
        beats.append(stack.start_beat(s.env, s.tmp / "beat-b.log"))  # and a second beat
        seen = len(runs())
        stack.wait_until(lambda: len(runs()) >= seen + 3, 30, "three more slots with two beats")
    finally:
        for beat in beats:
            stack.stop(beat)
    stack.wait_until(lambda: all(r.state.terminal for r in runs()), 30, "every run to end")

    done = runs()
    slots = [r.slot for r in done]
    assert len(slots) == len(set(slots)), "a slot ran twice"
    assert all(slot % 2 == 0 for slot in slots) and all(r.trigger == "schedule" for r in done)
    assert all(r.state.value == "SUCCEEDED" and len(r.job_ids) == 1 for r in done)
    assert all(_path(r.m3u8.uri).is_file() for r in done)
    logs = sends_before_restart + (s.tmp / "beat-a.log").read_text() + (s.tmp / "beat-b.log").read_text()
    sends = logs.count("Sending due task playlist:tick")
    assert sends > len(done), f"{sends} sends for {len(done)} runs: the duplicates were not exercised"
    assert "already claimed" in s.worker_logs()
    # Exactly one paid submit per run: one prompt per slot, each submitted once.
    ours = {p: n for p, n in sandbox.stats()["submits_by_prompt"].items() if nonce in p}
    assert len(ours) == len(done) and set(ours.values()) == {1}
    # The malformed definition is reported with its path and key, and skipped.
    assert "broken.toml: prompts[0]: unknown placeholder {nope}" in logs
    print(f"\nbeat: {len(done)} runs for {len(done)} slots from {sends} sends (two beats, one restart)")


def test_the_sweep_finishes_runs_whose_creator_or_check_chain_was_lost(make_stack, tmp_path):
    nonce = uuid.uuid4().hex[:8]
    s = make_stack(playlist_check_interval="0.5", watchdog_interval="1", watchdog_grace="1",
                   playlists_dir=str(tmp_path / "none"))
    s.start_worker(concurrency=2)
    queue = s.queue()
    store = PlaylistStore(queue.store.redis, queue.settings.key_prefix)
    definition = parse_definition({"prompts": [f"sweep {{index}} {nonce} sandbox:gen_time=0.2"], "count": 2}, "sweep.toml")
    # A check chain lost with its worker: the live chain's token is made stale at once.
    orphan, _ = start_run(queue, definition)
    store.apply(orphan.id, {RunState.RUNNING}, mutate=lambda r: setattr(r, "check_token", r.check_token + 1))
    # A creator that died after storing the run, before making any job.
    stranded = PlaylistRun(id=f"stranded-{nonce}", playlist="sweep", album="sweep", provider="udio",
                           storage_prefix="playlists/sweep", trigger="manual",
                           requests=definition.expand(datetime.now(UTC)),
                           min_success=1, timeout=60)
    store.create(stranded, check_in=1)
    beat = stack.start_beat(s.env, s.tmp / "beat.log")
    try:
        for run_id in (orphan.id, stranded.id):
            stack.wait_until(lambda run_id=run_id: store.get(run_id).state.terminal, 40, f"the sweep to finish {run_id}")
    finally:
        stack.stop(beat)
    for run_id in (orphan.id, stranded.id):
        run = store.get(run_id)
        assert run.state == RunState.SUCCEEDED and len(run.job_ids) == 2 and len(run.songs) == 4
    assert "check overdue; checking again" in s.worker_logs()
    assert "still CREATING past the grace" in s.worker_logs()
