"""MiniMax's current models end to end through the CLI: a JSON call to the sandbox, hex and URL answers."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("output", ["hex", "url"])
def test_music_2_6_through_the_cli(make_stack, sandbox, output: str) -> None:
    s = make_stack()
    s.start_worker()
    lyrics = f"[Verse]\nneon {uuid.uuid4().hex[:8]} sandbox:duration=4"

    result = s.cli("submit", "--provider", "minimax", "--model", "music-2.6", "--prompt", "city pop, night drive",
                   "--lyrics", lyrics, "--output-format", output, "--wait", "--timeout", "90", "--json")

    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["state"] == "SUCCEEDED", job
    record = s.queue().status(job["id"])
    assert record.model == "music-2.6" and len(record.songs) == 1
    assert record.songs[0].duration == pytest.approx(4, abs=0.5)  # music_duration, milliseconds
    log = requests.get(f"{sandbox.url}/_sandbox/requests", params={"limit": 2000}, timeout=5).json()["requests"]
    [sent] = [json.loads(e["body"]) for e in log if e["path"] == "/minimaxi/v1/music_generation" and
              lyrics.split()[2] in e["body"]]  # the run's unique word: both outputs sing "neon"
    assert sent == {"model": "music-2.6", "lyrics": lyrics, "prompt": "city pop, night drive", "output_format": output}
