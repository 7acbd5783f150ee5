"""Udio extend: `--extend SONG_ID` and `--extend-job JOB_ID [--song N]`, checked in what
the sandbox gateway actually received (`GET /_sandbox/requests`)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration

SONG_ID = "db71404a-17d4-4fdf-a781-48381362d31b"  # a real song id from seed 001


def _prompt(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def _submitted_gen_params(sandbox: Any, prompt: str) -> dict[str, Any]:
    """The gen_params of the one submit the sandbox received for `prompt`."""
    log = requests.get(f"{sandbox.url}/_sandbox/requests", params={"limit": 2000}, timeout=5).json()["requests"]
    bodies = [json.loads(e["body"])["gen_params"] for e in log
              if e["method"] == "POST" and e["path"].startswith("/udio/") and prompt in e["body"]]
    assert len(bodies) == 1, f"{len(bodies)} submits for {prompt!r}"
    return bodies[0]


def test_extend_a_song_by_id(make_stack, sandbox) -> None:
    s = make_stack()
    s.start_worker()
    prompt = _prompt("an intro for it")

    result = s.cli("submit", "--prompt", prompt, "--extend", SONG_ID, "--mode", "precede", "--context-length", "60",
                   "--section-start", "0.2", "--wait", "--timeout", "60", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "SUCCEEDED"
    params = _submitted_gen_params(sandbox, prompt)
    assert params["config"] == {"mode": "precede", "context_length": 60,
                                "source": {"source_type": "song", "song_id": SONG_ID}}
    assert params["song_section_start"] == 0.2


def test_extend_a_song_of_an_earlier_job(make_stack, sandbox) -> None:
    s = make_stack()
    s.start_worker()
    queue = s.queue()
    first = queue.wait(queue.submit({"prompt": _prompt("the original")}).id, timeout=60)
    assert first.state.value == "SUCCEEDED" and len(first.songs) == 2
    prompt = _prompt("and then it goes on")

    result = s.cli("submit", "--prompt", prompt, "--extend-job", first.id, "--song", "2",
                   "--wait", "--timeout", "60", "--json")

    assert result.returncode == 0, result.stderr
    params = _submitted_gen_params(sandbox, prompt)
    assert params["config"]["mode"] == "continuation"  # the default when extending
    assert params["config"]["source"] == {"source_type": "song", "song_id": first.songs[1].upstream_id}
    assert first.songs[1].upstream_id != first.songs[0].upstream_id
    # --song defaults to the first song.
    prompt = _prompt("the first one goes on")
    assert s.cli("submit", "--prompt", prompt, "--extend-job", first.id, "--mode", "precede").returncode == 0
    assert queue.list(limit=10)[0].request["config"] == {
        "mode": "precede", "context_length": 130, "source": {"source_type": "song", "song_id": first.songs[0].upstream_id}}


def test_extend_job_refusals_name_the_flag_and_enqueue_nothing(make_stack, sandbox) -> None:
    s = make_stack()  # no worker: the jobs below stay QUEUED, without songs
    queue = s.queue()
    songless = queue.submit({"prompt": _prompt("not yet")}).id
    minimax = queue.submit({"lyrics": "la", "refer_voice": "vocal-1"}, provider="minimax").id
    submits_before = sandbox.stats()["submit_requests"]
    jobs_before = {r.id for r in queue.list()}

    cases = [
        (["--extend-job", "no-such-job"], "--extend-job: no job no-such-job"),
        (["--extend-job", songless], f"--extend-job: job {songless} has no songs (QUEUED)"),
        (["--extend-job", minimax], "is a minimax job"),
        (["--extend-job", songless, "--extend", SONG_ID], "not allowed with argument --extend-job"),
        (["--song", "2"], "--song: only with --extend-job"),
        (["--extend-job", songless, "--song", "two"], "--song"),
    ]
    for args, named in cases:
        result = s.cli("submit", "--prompt", _prompt("extension"), *args)
        assert result.returncode == 2, (args, result.stderr)
        assert named in result.stderr, (args, result.stderr)

    assert {r.id for r in queue.list()} == jobs_before
    assert sandbox.stats()["submit_requests"] == submits_before


def test_extend_job_song_out_of_range(make_stack) -> None:
    s = make_stack()
    s.start_worker()
    queue = s.queue()
    done = queue.wait(queue.submit({"prompt": _prompt("two songs")}).id, timeout=60)
    jobs_before = len(queue.list())

    result = s.cli("submit", "--prompt", _prompt("extension"), "--extend-job", done.id, "--song", "3")
    assert result.returncode == 2
    assert f"--song: job {done.id} has 2 song(s): N must be 1..2, got 3" in result.stderr
    # 0 is refused by the flag's own range, before the job is looked up.
    result = s.cli("submit", "--prompt", _prompt("extension"), "--extend-job", done.id, "--song", "0")
    assert result.returncode == 2
    assert "--song: must be >= 1" in result.stderr

    assert len(queue.list()) == jobs_before
