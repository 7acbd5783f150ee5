"""The sandbox's MiniMax endpoints over real HTTP: upload, generation, URL audio, refusals, stats."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
import requests
from mutagen.mp3 import MP3

from sandbox import audio

UPLOAD = "/minimaxi/v1/music_upload"
GENERATE = "/minimaxi/v1/music_generation"
REFERENCE = audio.song_mp3(1.0, 2)


@pytest.fixture
def post(sandbox):
    auth = {"Authorization": f"Bearer {sandbox.api_key}"}

    def send(path: str, form: dict[str, Any], headers: dict[str, str] | None = None) -> requests.Response:
        files = {k: v if isinstance(v, tuple) else (None, v) for k, v in form.items()}
        return requests.post(sandbox.url + path, files=files, headers=auth if headers is None else headers, timeout=10)

    return send


@pytest.fixture
def voice(post) -> str:
    return post(UPLOAD, {"purpose": "voice", "file": ("v.mp3", REFERENCE, "audio/mpeg")}).json()["voice_id"]


def _lyrics(text: str = "la") -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(("purpose", "ids"), [
    ("voice", {"voice_id"}), ("instrumental", {"instrumental_id"}), ("song", {"voice_id", "instrumental_id"}),
])
def test_upload_issues_ids_by_purpose(post, sandbox, purpose: str, ids: set[str]) -> None:
    before = sandbox.stats()["minimax_uploads"]
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt "
    answer = post(UPLOAD, {"purpose": purpose, "file": ("ref.wav", wav, "audio/wav")}).json()
    assert answer["base_resp"] == {"status_code": 0, "status_msg": "success"}
    assert set(answer) == {*ids, "trace_id", "base_resp"}
    assert sandbox.stats()["minimax_uploads"] == before + 1


@pytest.mark.parametrize(("form", "says"), [
    ({"purpose": "drums", "file": ("a.mp3", REFERENCE, "audio/mpeg")}, "purpose: must be one of"),
    ({"purpose": "voice"}, "file: a non-empty audio file is required"),
    ({"purpose": "voice", "file": ("a.mp3", b"", "audio/mpeg")}, "file: a non-empty audio file is required"),
    ({"purpose": "voice", "file": ("a.txt", b"hello", "text/plain")}, "file: not an audio file"),
], ids=["bad-purpose", "no-file", "empty-file", "not-audio"])
def test_upload_refusals_are_2013(post, form: dict[str, Any], says: str) -> None:
    answer = post(UPLOAD, form).json()
    assert answer["base_resp"]["status_code"] == 2013 and says in answer["base_resp"]["status_msg"]


def test_generation_answers_hex_mp3_with_its_length(post, voice, sandbox) -> None:
    lyrics = _lyrics("##晨光 sandbox:duration=2")
    answer = post(GENERATE, {"model": "music-01", "lyrics": lyrics, "refer_voice": voice}).json()
    data = bytes.fromhex(answer["data"]["audio"])
    assert data == audio.song_mp3(2.0, 1) and answer["data"]["status"] == 2
    assert answer["extra_info"]["audio_length"] == round(MP3(fileobj=io.BytesIO(data)).info.length * 1000)
    assert sandbox.stats()["generations_by_lyrics"][lyrics] == 1


def test_generation_answers_a_url_on_request(post, voice, sandbox) -> None:
    answer = post(GENERATE, {"model": "music-01", "lyrics": _lyrics("sandbox:url"), "refer_voice": voice}).json()
    url = answer["data"]["audio"]
    assert url.startswith(f"{sandbox.url}/minimax/audio/") and url.endswith(".mp3")
    assert requests.get(url, timeout=10).content == audio.song_mp3(3.0, 1)
    assert requests.get(url.replace(url[-36:-4], "0" * 32), timeout=10).status_code == 404


@pytest.mark.parametrize(("form", "code", "says"), [
    ({"model": "music-02"}, 2013, "model: must be music-01"),
    ({"lyrics": ""}, 2013, "lyrics: required"),
    ({"lyrics": "晨" * 201}, 2013, "lyrics: at most 200 characters, got 201"),
    ({"refer_voice": None}, 2013, "at least one is required"),
    ({"refer_voice": "vocal-never-issued"}, 2013, "refer_voice: unknown voice_id"),
    ({"lyrics": "sandbox:minimax_error"}, 1026, "sensitive"),
    ({"lyrics": "sandbox:minimax_error=1008"}, 1008, "insufficient balance"),
    ({"lyrics": "sandbox:nonsense"}, 2013, "unknown sandbox directive"),
], ids=["model", "lyrics-empty", "lyrics-201-cjk", "no-reference", "unknown-reference", "error-default",
        "error-code", "bad-directive"])
def test_generation_refusals(post, voice, sandbox, form: dict[str, Any], code: int, says: str) -> None:
    before = sandbox.stats()["minimax_generations"]
    request = {"model": "music-01", "lyrics": _lyrics(), "refer_voice": voice, **form}
    answer = post(GENERATE, {k: v for k, v in request.items() if v is not None})
    assert answer.status_code == 200 and "data" not in answer.json()
    assert answer.json()["base_resp"]["status_code"] == code and says in answer.json()["base_resp"]["status_msg"]
    assert sandbox.stats()["minimax_generations"] == before


def test_the_key_is_required(post, voice, sandbox) -> None:
    before = sandbox.stats()["unauthorized"]
    assert post(GENERATE, {"model": "music-01", "lyrics": "la", "refer_voice": voice}, headers={}).status_code == 401
    assert post(UPLOAD, {"purpose": "voice"}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert sandbox.stats()["unauthorized"] == before + 2
