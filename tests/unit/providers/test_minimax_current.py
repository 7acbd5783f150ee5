"""MiniMax's current models (music-1.5 to music-2.6): the request rules, the JSON call, the
answer's base_resp codes, music_duration, and a URL answer in data.audio or data.audio_url."""

from __future__ import annotations

import pydantic
import pytest

from producer.core.models.minimax import MiniMaxRequest
from producer.core.models.validation_errors import field_errors
from workers.providers.minimax import parse_generation
from workers.upstream.errors import PermanentError, TransientError

OK = {"status_code": 0, "status_msg": "success"}


def test_current_model_request_is_a_json_body() -> None:
    request = MiniMaxRequest(model="music-2.6", prompt="city pop, night drive", lyrics="[Verse]\nla la",
                             output_format="url", audio_setting={"sample_rate": 44100, "bitrate": 256000})
    assert request.to_gen_params() == {
        "model": "music-2.6", "lyrics": "[Verse]\nla la", "prompt": "city pop, night drive", "output_format": "url",
        "audio_setting": {"sample_rate": 44100, "bitrate": 256000, "format": "mp3"}}


@pytest.mark.parametrize(("data", "field", "rule"), [
    ({"model": "music-2.6", "is_instrumental": True}, "prompt", "required when is_instrumental"),
    ({"model": "music-2.5", "prompt": "pop"}, "lyrics", "unless lyrics_optimizer"),
    ({"model": "music-2.0", "lyrics": "la", "refer_voice": "v-1"}, "refer_voice", "only for music-01"),
    ({"model": "music-01", "lyrics": "la", "refer_voice": "v-1", "prompt": "pop"}, "prompt", "not music-01"),
    ({"model": "music-1.5", "lyrics": "x" * 3501}, "lyrics", "at most 3500"),
    ({"model": "music-2.6", "lyrics": "la", "output_format": "wav"}, "output_format", "url"),
])
def test_current_model_refusals(data: dict, field: str, rule: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        MiniMaxRequest.model_validate(data)
    key, message = field_errors(info.value)[0]
    assert key == field and rule in message


def test_lyrics_optimizer_needs_only_a_prompt() -> None:
    assert MiniMaxRequest(model="music-2.6", prompt="folk", lyrics_optimizer=True).lyrics == ""


def test_url_answer_and_music_duration_in_ms() -> None:
    body = {"data": {"audio_url": "https://cdn.example/a.mp3", "status": 2}, "trace_id": "t1",
            "extra_info": {"music_duration": 25364, "music_sample_rate": 44100}, "base_resp": OK}
    song = parse_generation(body, "la")
    assert song.song_path == "https://cdn.example/a.mp3" and song.duration == pytest.approx(25.364)


@pytest.mark.parametrize("code", [1002, 1000, 1001, 1024])
def test_transient_codes(code: int) -> None:
    with pytest.raises(TransientError):
        parse_generation({"base_resp": {"status_code": code, "status_msg": "busy"}})


@pytest.mark.parametrize("code", [1004, 1008, 1026, 2013, 2061])
def test_permanent_codes(code: int) -> None:
    with pytest.raises(PermanentError, match=f"status_code {code}"):
        parse_generation({"base_resp": {"status_code": code, "status_msg": "no"}})
