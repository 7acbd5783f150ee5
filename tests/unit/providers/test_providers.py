"""The provider layer: registry, per-provider settings and prices, MiniMax's answers,
inline audio, and which assets a song must store."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydantic
import pytest
import requests

from producer.client.minimax_upload import UploadError, upload_reference
from producer.core.models.job_record import JobRecord, SongRecord, StoredObject
from producer.core.models.providers import PROVIDERS, provider_spec
from producer.core.settings import POLLED_PROVIDERS, Settings
from sandbox import audio
from workers.artifacts import inline_audio
from workers.artifacts.manifest import staged_audio_key
from workers.providers import registry
from workers.providers.base import AsyncProvider, SyncProvider
from workers.providers.minimax import parse_generation, title_from_lyrics
from workers.storage.file import FileStorage
from workers.upstream.errors import PermanentError, TransientError

MP3 = audio.song_mp3(1.0, 1)
OK = {"status_code": 0, "status_msg": "success"}


# --- registry -------------------------------------------------------------------------------


def test_every_producer_provider_has_a_worker_module() -> None:
    assert set(PROVIDERS) == {"udio", "minimax", "suno"}
    for name in PROVIDERS:
        assert registry.build(name, Settings()).name == name


def test_build_picks_the_kind_by_name() -> None:
    settings = Settings()
    udio, minimax = registry.build("udio", settings), registry.build("minimax", settings)
    assert isinstance(udio, AsyncProvider) and not isinstance(udio, SyncProvider)
    assert isinstance(minimax, SyncProvider) and not isinstance(minimax, AsyncProvider)
    assert (udio.name, minimax.name) == ("udio", "minimax")


def test_build_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown provider 'stable-audio'; known: minimax, suno, udio"):
        registry.build("stable-audio", Settings())


def test_minimax_call_timeout_is_its_deadline_and_hex_is_capped_as_a_download() -> None:
    provider = registry.build("minimax", Settings(minimax_deadline=120, max_download_bytes=10 * 1024 * 1024,
                                                  max_json_bytes=1 << 20))
    assert provider.timeout == 120
    # The hex is streamed to a spool file: only the rest of the answer is held under the JSON cap.
    assert (provider.max_audio_bytes, provider.max_json_bytes) == (10 * 1024 * 1024, 1 << 20)


# --- per-provider settings and price ----------------------------------------------------------


def test_price_per_call_times_the_model_factor() -> None:
    settings = Settings(udio_price_per_call=0.05, minimax_price_per_call=0.2)
    udio, minimax = registry.build("udio", settings), registry.build("minimax", settings)
    assert registry.call_price(settings, udio, "udio32-v1.5") == pytest.approx(0.05)
    assert registry.call_price(settings, udio, "udio130-v1.5") == pytest.approx(0.10)  # twice, per the contract
    assert registry.call_price(settings, minimax, "music-01") == pytest.approx(0.2)


def test_poll_schedule_falls_back_to_the_global_settings() -> None:
    assert Settings(poll_initial_delay=4, poll_min_interval=1, poll_max_interval=9).poll_schedule("udio") == (4, 1, 9)
    overridden = Settings(poll_min_interval=1, udio_poll_initial_delay=0, udio_poll_max_interval=20)
    assert overridden.poll_schedule("udio") == (0, 1, 20)
    assert overridden.poll_schedule("minimax") == (5, 1, 30)  # not polled, no schedule of its own: the global one


@pytest.mark.parametrize(("changes", "named"), [
    ({"udio_poll_min_interval": 40}, "udio_poll_min_interval must be <= udio_poll_max_interval"),
    ({"udio_poll_max_interval": 20000}, "visibility_timeout must exceed the longest countdown"),
    ({"minimax_deadline": 570}, "minimax_deadline must be shorter than task_time_limit"),
    ({"udio_price_per_call": -1}, "udio_price_per_call"),
], ids=["min-above-max", "countdown-beyond-visibility", "deadline-beyond-task-limit", "negative-price"])
def test_bad_provider_settings_are_refused(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=named):
        Settings(**changes)


# --- MiniMax answers ----------------------------------------------------------------------------


def _answer(**data: Any) -> dict[str, Any]:
    return {"data": {"status": 2, **data}, "trace_id": "trace-1", "base_resp": OK,
            "extra_info": {"audio_length": 1045, "audio_size": len(MP3)}}


def test_hex_audio_is_decoded() -> None:
    song = parse_generation(_answer(audio=MP3.hex()), "##晨光\n\n夜雨##")
    assert song.audio_bytes == MP3 and song.song_path == "" and song.image_path == ""
    assert (song.id, song.title, song.lyrics, song.duration, song.finished) == ("trace-1", "晨光", "##晨光\n\n夜雨##", 1.045, True)


def test_url_audio_is_kept_for_the_download_step() -> None:
    song = parse_generation(_answer(audio=" https://cdn.example/a%2520b.mp3 "))
    assert song.song_path == "https://cdn.example/a%2520b.mp3" and song.audio_bytes is None


def test_without_trace_id_the_song_id_comes_from_the_audio() -> None:
    body = {"data": {"audio": MP3.hex()}, "base_resp": OK}
    assert parse_generation(body).id == parse_generation(body).id == "minimax-" + hashlib.sha256(
        MP3.hex().encode()).hexdigest()[:16]
    assert parse_generation(body).duration is None


BAD_ANSWERS: list[tuple[str, Any, type[Exception], str, bool]] = [
    ("refused", {"base_resp": {"status_code": 1026, "status_msg": "input new_sensitive"}}, PermanentError,
     "MiniMax refused the request: input new_sensitive (status_code 1026)", False),
    ("refused-without-message", {"base_resp": {"status_code": 2013}}, PermanentError, "no status_msg", False),
    ("rate-limited", {"base_resp": {"status_code": 1002, "status_msg": "rate limit"}}, TransientError,
     "MiniMax is rate limiting", False),
    ("no-base-resp", {"data": {"audio": "00"}}, TransientError, "no base_resp", True),
    ("not-an-object", ["ok"], TransientError, "no base_resp", True),
    ("success-without-audio", {"data": {"status": 1}, "base_resp": OK}, PermanentError, "data.status 1", True),
    ("success-without-data", {"base_resp": OK}, PermanentError, "without audio", True),
    ("audio-neither-hex-nor-url", {"data": {"audio": "ftp://x/y.mp3"}, "base_resp": OK}, PermanentError,
     "neither a URL nor hex", True),
]


@pytest.mark.parametrize(("body", "kind", "says", "maybe_accepted"), [c[1:] for c in BAD_ANSWERS],
                         ids=[c[0] for c in BAD_ANSWERS])
def test_bad_answers(body: Any, kind: type[Exception], says: str, maybe_accepted: bool) -> None:
    with pytest.raises(kind) as caught:
        parse_generation(body)
    assert says in str(caught.value)
    assert getattr(caught.value, "maybe_accepted", False) is maybe_accepted


@pytest.mark.parametrize(("lyrics", "title"), [
    ("##\n\n  first line  \nsecond##", "first line"), ("", ""), ("x" * 100, "x" * 80),
])
def test_title_is_the_first_sung_line(lyrics: str, title: str) -> None:
    assert title_from_lyrics(lyrics) == title


def test_generate_over_http_sends_the_form_and_the_key(sandbox) -> None:
    auth = {"Authorization": f"Bearer {sandbox.api_key}"}
    voice = requests.post(f"{sandbox.url}/minimaxi/v1/music_upload", headers=auth, data={"purpose": "song"},
                          files={"file": ("song.mp3", MP3, "audio/mpeg")}, timeout=10).json()
    assert voice["voice_id"].startswith("vocal-") and voice["instrumental_id"].startswith("instrumental-")
    provider = registry.build("minimax", Settings(minimax_base_url=sandbox.url, minimax_api_key=sandbox.api_key))

    [song] = provider.generate({"model": "music-01", "lyrics": "直接 sandbox:duration=1.5",
                                "refer_voice": voice["voice_id"], "refer_instrumental": voice["instrumental_id"]})

    assert song.audio_bytes is None and song.audio_file is not None
    assert song.audio_file.path.read_bytes() == audio.song_mp3(1.5, 1)
    song.audio_file.path.unlink()
    assert song.duration == pytest.approx(audio.song_duration(1.5, 1), abs=0.001)
    wrong_key = registry.build("minimax", Settings(minimax_base_url=sandbox.url, minimax_api_key="nope"))
    with pytest.raises(PermanentError, match="HTTP 401"):
        wrong_key.generate({"model": "music-01", "lyrics": "la", "refer_voice": voice["voice_id"]})


# --- inline audio -------------------------------------------------------------------------------


def test_staged_audio_reads_back_byte_for_byte(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    key = inline_audio.stage(storage, "job1", 0, MP3, max_bytes=len(MP3))
    assert key == staged_audio_key("job1", 0) == "jobs/job1/upstream/song-1.mp3"
    with inline_audio.open_staged(storage, key, max_bytes=len(MP3), chunk_bytes=1000) as staged:
        assert (staged.extension, staged.content_type) == ("mp3", "audio/mpeg")
        assert b"".join(staged.chunks) == MP3
    # Read back under the same cap as a download.
    with pytest.raises(PermanentError) as caught, inline_audio.open_staged(
            storage, key, max_bytes=len(MP3) - 1, chunk_bytes=1000) as staged:
        b"".join(staged.chunks)
    assert caught.value.code == "download_too_large"


@pytest.mark.parametrize(("data", "cap", "code"), [
    (b"<html>error</html>", 1000, "download_not_audio"), (MP3, len(MP3) - 1, "download_too_large"),
], ids=["not-mp3", "over-cap"])
def test_stage_refuses_like_a_download(tmp_path: Path, data: bytes, cap: int, code: str) -> None:
    with pytest.raises(PermanentError) as caught:
        inline_audio.stage(FileStorage(tmp_path), "job1", 0, data, max_bytes=cap)
    assert caught.value.code == code
    assert not (tmp_path / "jobs").exists()


def test_missing_staged_audio_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="is missing"), inline_audio.open_staged(
        FileStorage(tmp_path), "jobs/j/upstream/song-1.mp3", max_bytes=10, chunk_bytes=10
    ):
        pass


# --- what a job must store ------------------------------------------------------------------------


def test_a_song_without_a_cover_expects_only_its_audio() -> None:
    stored = StoredObject(uri="file:///x", key="x", size=1, sha256="0", content_type="audio/mpeg")
    record = JobRecord(id="j", provider="minimax", model="music-01", request={}, songs=[
        SongRecord(upstream_id="a", image_path="https://cdn/a.png"), SongRecord(upstream_id="b")])
    assert [s.assets() for s in record.songs] == [("audio", "cover"), ("audio",)]
    assert record.expected_assets() == 3
    record.songs[1].audio = stored
    record.songs[0].audio = stored
    assert record.stored_assets() == 2
    record.songs[0].cover = stored
    assert record.stored_assets() == record.expected_assets()


# --- reference uploads (producer side) -----------------------------------------------------------


def test_upload_reference_over_http(sandbox, tmp_path: Path) -> None:
    path = tmp_path / "voice.mp3"
    path.write_bytes(MP3)
    settings = Settings(minimax_base_url=sandbox.url, minimax_api_key=sandbox.api_key)
    assert upload_reference(settings, path, "voice").startswith("vocal-")
    assert upload_reference(settings, path, "instrumental").startswith("instrumental-")
    path.write_bytes(b"not audio")
    with pytest.raises(UploadError, match="not an audio file") as refused:
        upload_reference(settings, path, "voice")
    assert refused.value.refused
    with pytest.raises(UploadError, match="HTTP 401") as bad_key:
        upload_reference(Settings(minimax_base_url=sandbox.url, minimax_api_key="nope"), path, "voice")
    assert bad_key.value.refused


def test_upload_reference_unreachable_is_not_a_refusal(tmp_path: Path) -> None:
    path = tmp_path / "voice.mp3"
    path.write_bytes(MP3)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(UploadError, match="could not reach") as caught:
        upload_reference(Settings(minimax_base_url=f"http://127.0.0.1:{port}", minimax_api_key="k"), path, "voice")
    assert not caught.value.refused


# --- provider specs (producer/core/models/providers.py) -------------------------------------------


def test_provider_spec_names_the_choices() -> None:
    assert provider_spec("minimax").text_field == "lyrics"
    with pytest.raises(ValueError, match="unknown provider 'stable-audio'; known: minimax, suno, udio"):
        provider_spec("stable-audio")


def test_specs_say_which_providers_are_polled_and_their_default_model() -> None:
    assert POLLED_PROVIDERS == ("udio", "suno")
    assert {name: spec.default_model for name, spec in PROVIDERS.items()} == {"udio": "udio32-v1.5",
                                                                             "minimax": "music-01",
                                                                             "suno": "chirp-v3-5"}


def test_models_import_no_celery_redis_or_requests() -> None:
    """The specs are read by the producer's lightest callers: they must stay plain models.

    `producer/__init__.py` re-exports the client (celery), so the package is stood in for by
    a bare one: what is checked is what the models themselves pull in."""
    package = Path(__file__).resolve().parent.parent / "producer"
    code = ("import sys, types; p = types.ModuleType('producer'); p.__path__ = [sys.argv[1]]; "
            "sys.modules['producer'] = p; "
            "import producer.core.models.providers, producer.core.models.job_record, producer.core.models.validation_errors; "
            "print(sorted(m for m in ('celery', 'redis', 'requests') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(package)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
