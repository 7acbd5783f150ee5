"""Suno's answers through the relays, parsed from bodies shaped as new-api and Suno-API send
them (tests/fixtures/suno/): both single-fetch shapes, the batch fetch, clip statuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workers.providers.base import Outcome
from workers.providers.suno import clips_status, parse_batch, parse_fetch, parse_submit
from workers.upstream.errors import PermanentError, TransientError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "suno"


def _body(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_submit_answer_is_the_task_id() -> None:
    assert parse_submit({"code": "success", "message": "", "data": "task_" + "a" * 32}) == "task_" + "a" * 32


def test_streaming_clip_never_hands_on_its_stream_url() -> None:
    status = parse_fetch(_body("newapi-fetch-streaming.json"))
    assert status.outcome is Outcome.RUNNING
    assert status.raw_status == "IN_PROGRESS"
    assert [s.finished for s in status.songs] == [False, False]
    assert all(s.song_path == "" for s in status.songs)  # not audiopipe.suno.ai
    assert 0 < status.progress < 100


def test_bare_clip_array_complete() -> None:
    status = parse_fetch(_body("sunoapi-fetch-clips-complete.json"))
    assert status.outcome is Outcome.SUCCEEDED and status.progress == 100
    first, second = status.songs
    assert first.finished and first.song_path.endswith("00000000000a.mp3")
    assert first.image_path == "https://cdn2.suno.ai/image_large_c1a2b3c4.jpeg"  # the large cover first
    assert second.image_path == "https://cdn2.suno.ai/image_c1a2b3c4b.jpeg"  # else image_url
    assert first.duration == pytest.approx(182.4)
    assert first.tags == ["mandopop", "piano ballad"]
    assert first.title == "城市之光" and first.lyrics.startswith("[Verse]")


def test_batch_matched_by_task_id_in_any_order() -> None:
    statuses = parse_batch(_body("newapi-fetch-batch.json"))
    assert set(statuses) == {"task_" + "b" * 32, "f3b0c442-98fc-4c14-9afb-f4c8996fb924"}
    failed = statuses["task_" + "b" * 32]
    assert failed.outcome is Outcome.FAILED
    assert failed.fail_reason == "Song description contains artist name"  # the first clip's message


def test_task_success_waits_for_every_clip_complete() -> None:
    status = parse_batch(_body("newapi-fetch-batch.json"))["f3b0c442-98fc-4c14-9afb-f4c8996fb924"]
    assert status.outcome is Outcome.RUNNING  # one clip still streaming: no MP3 yet
    assert [s.finished for s in status.songs] == [True, False]  # the complete one downloads early
    assert status.songs[1].song_path == ""


def test_batch_with_no_match_is_empty() -> None:
    assert parse_batch(_body("newapi-fetch-batch-none.json")) == {}


def test_relay_error_envelope_is_permanent() -> None:
    with pytest.raises(PermanentError, match="task_not_exist"):
        parse_fetch(_body("newapi-task-not-exist.json"))


def test_fetch_without_task_or_clips_is_transient() -> None:
    with pytest.raises(TransientError):
        parse_fetch({"code": "success", "message": "", "data": "oops"})


@pytest.mark.parametrize(("statuses", "outcome", "raw"), [
    (["submitted", "submitted"], Outcome.RUNNING, "SUBMITTED"),
    (["queued", "streaming"], Outcome.RUNNING, "QUEUED"),
    (["streaming", "complete"], Outcome.RUNNING, "IN_PROGRESS"),
    (["complete", "complete"], Outcome.SUCCEEDED, "SUCCESS"),
    (["complete", "error"], Outcome.FAILED, "FAILURE"),
    (["complete", "weird"], Outcome.FAILED, "FAILURE"),  # anything else is a failure, as Suno-API maps it
])
def test_clip_statuses_map_to_the_task(statuses: list[str], outcome: Outcome, raw: str) -> None:
    clips = [{"id": f"c{i}", "status": s, "audio_url": f"https://x/{i}.mp3", "metadata": {}}
             for i, s in enumerate(statuses)]
    status = clips_status(clips)
    assert (status.outcome, status.raw_status) == (outcome, raw)


@pytest.mark.parametrize("spelling", ["FAILURE", "FAIL", "UNKNOWN"])
def test_terminal_failure_spellings(spelling: str) -> None:
    body = {"code": "success", "data": {"task_id": "t", "status": spelling, "fail_reason": "nope", "data": []}}
    status = parse_fetch(body)
    assert status.outcome is Outcome.FAILED and status.fail_reason == "nope"


def test_an_ended_batch_task_says_what_it_took() -> None:
    clip = {"id": "c1", "status": "complete", "audio_url": "https://cdn.example/c1.mp3", "metadata": {"duration": 3}}
    task = {"task_id": "t1", "status": "SUCCESS", "submit_time": 1000, "finish_time": 1090, "data": [clip]}
    assert parse_batch({"code": "success", "data": [task]})["t1"].took == 90.0
    streaming = {**task, "status": "IN_PROGRESS", "data": [{**clip, "status": "streaming"}]}
    assert parse_batch({"code": "success", "data": [streaming]})["t1"].took is None
