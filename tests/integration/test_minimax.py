"""MiniMax music-01: the request rules at the producer, and jobs end to end through the
CLI, real Redis, real workers and the sandbox over HTTP (upload, then generation)."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pydantic
import pytest
import requests
from mutagen.id3 import ID3
from mutagen.mp3 import MP3

from producer.cli import exit_codes, jobs
from producer.cli import main as cli
from producer.client.minimax_upload import UploadError
from producer.core.models.minimax import MiniMaxRequest, lyrics_length
from producer.core.models.validation_errors import field_errors
from sandbox import audio

SONG_SECONDS = 3.0  # the session sandbox's --song-duration
VOICE = "vocal-0123abcd"


def _lyrics(text: str) -> str:
    # Unique per test run: the sandbox counts generations by lyrics.
    return f"{text} {uuid.uuid4().hex[:8]}"


def _path(uri: str) -> Path:
    return Path(urlparse(uri).path)


def _reference_file(tmp_path: Path, name: str = "voice.mp3") -> Path:
    path = tmp_path / name
    path.write_bytes(audio.song_mp3(1.0, 2))
    return path


def _request_log(sandbox: Any) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.url}/_sandbox/requests", params={"limit": 2000}, timeout=5).json()["requests"]


# --- the request model -----------------------------------------------------------------

CJK_200 = "晨" * 200
VALID_LYRICS = [
    ("ascii-200", "a" * 200),
    ("cjk-200", CJK_200),
    ("cjk-punctuation-mixed-200", ("夜雨，rain! " * 20)[:200]),
    ("accompaniment-both-ends", "##晨光照进窗台\n\n夜雨敲着屋檐##"),
    ("accompaniment-start-only", "##la la"),
    ("pause-and-lines", "line one\nline two\n\nafter a pause"),
    ("decomposed-accent-counts-once", "e\u0301" * 200),  # NFC: 200 x é
    ("crlf-becomes-lf", "a\r\n" * 66 + "ab"),  # 200 once \r\n is \n
]
BAD_LYRICS = [
    ("ascii-201", "a" * 201, "at most 200 characters"),
    ("cjk-201", CJK_200 + "光", "got 201"),
    ("cjk-punctuation-201", "，" * 201, "got 201"),
    ("newlines-count", "a\n" * 100 + "b", "got 201"),
    ("markers-count", "##" + "a" * 197 + "##", "got 201"),
    ("accompaniment-in-the-middle", "verse one\n##\nverse two", "only allowed at the very start and the very end"),
    ("blank", "   \n\n ", "required"),
    ("markers-only", "####", "required"),
    ("empty", "", "required"),
]


@pytest.mark.parametrize("lyrics", [c[1] for c in VALID_LYRICS], ids=[c[0] for c in VALID_LYRICS])
def test_valid_lyrics_are_accepted(lyrics: str) -> None:
    request = MiniMaxRequest(lyrics=lyrics, refer_voice=VOICE)
    assert lyrics_length(request.lyrics) <= 200
    assert "\r" not in request.lyrics
    assert request.to_gen_params() == {"model": "music-01", "lyrics": request.lyrics, "refer_voice": VOICE}


@pytest.mark.parametrize(("lyrics", "rule"), [c[1:] for c in BAD_LYRICS], ids=[c[0] for c in BAD_LYRICS])
def test_bad_lyrics_are_refused_naming_the_field(lyrics: str, rule: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        MiniMaxRequest(lyrics=lyrics, refer_voice=VOICE)
    [(field, message)] = field_errors(caught.value)
    assert field == "lyrics" and rule in message


BAD_REQUESTS = [
    ("no-reference", {"lyrics": "la"}, "refer_voice", "at least one of refer_voice / refer_instrumental"),
    ("lyrics-missing", {"refer_voice": VOICE}, "lyrics", "required, the words to sing"),
    ("model-unknown", {"lyrics": "la", "refer_voice": VOICE, "model": "music-02"}, "model", "music-01"),
    ("reference-with-space", {"lyrics": "la", "refer_instrumental": "a b"}, "refer_instrumental", "pattern"),
    ("prompt-with-music-01", {"lyrics": "la", "refer_voice": VOICE, "prompt": "x"}, "prompt", "not music-01"),
    ("unknown-field", {"lyrics": "la", "refer_voice": VOICE, "bpm": 120}, "bpm", "unknown field"),
]


@pytest.mark.parametrize(("data", "field", "rule"), [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_are_refused(data: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        MiniMaxRequest.model_validate(data)
    assert any(f == field and rule in m for f, m in field_errors(caught.value)), field_errors(caught.value)


def test_either_reference_alone_is_enough() -> None:
    assert MiniMaxRequest(lyrics="la", refer_instrumental="instrumental-1").to_gen_params() == {
        "model": "music-01", "lyrics": "la", "refer_instrumental": "instrumental-1"}


# --- CLI refusals: exit 2, nothing uploaded, nothing enqueued ----------------------------


class RecordingQueue:
    """Stands in for SongQueue: counts uploads and submits, needs no Redis."""

    made: list[RecordingQueue] = []

    def __init__(self) -> None:
        self.uploads: list[tuple[Path, str]] = []
        self.submitted: list[tuple[Any, str]] = []
        RecordingQueue.made.append(self)

    def upload_reference(self, path: Path, purpose: str) -> str:
        self.uploads.append((path, purpose))
        return f"{purpose}-uploaded"

    def submit(self, request: Any, *, provider: str, idempotency_key: str | None,
               callback_url: str | None = None, callback_progress: bool = False, **_: Any) -> Any:
        self.submitted.append((request, provider))
        return type("Handle", (), {"id": "job-1"})()


@pytest.fixture
def recording_queue(monkeypatch: pytest.MonkeyPatch) -> type[RecordingQueue]:
    RecordingQueue.made = []
    monkeypatch.setattr(jobs, "SongQueue", RecordingQueue)
    return RecordingQueue


def _cli_refusals(tmp_path: Path) -> list[tuple[str, list[str], str]]:
    voice = _reference_file(tmp_path)
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    base = ["--provider", "minimax", "--lyrics", "la"]
    return [
        ("lyrics-201-cjk", ["--provider", "minimax", "--lyrics", CJK_200 + "光", "--refer-voice-file", str(voice)],
         "lyrics: at most 200"),
        ("no-reference", base, "--refer-voice: at least one"),
        ("voice-file-missing", [*base, "--refer-voice-file", str(tmp_path / "nope.mp3")], "--refer-voice-file"),
        ("voice-file-is-a-folder", [*base, "--refer-voice-file", str(tmp_path)], "--refer-voice-file"),
        ("instrumental-file-empty", [*base, "--refer-instrumental-file", str(empty)], "--refer-instrumental-file"),
        ("file-and-id-together", [*base, "--refer-voice", VOICE, "--refer-voice-file", str(voice)],
         "--refer-voice-file"),
        ("prompt-with-music-01", [*base, "--refer-voice", VOICE, "--prompt", "x"],
         "--prompt: only for music-2.6"),
        ("extend-with-minimax", [*base, "--refer-voice", VOICE, "--extend", "s1"], "--extend"),
        ("minimax-flag-with-udio", ["--prompt", "x", "--refer-voice", VOICE], "--refer-voice: not a flag of --provider udio"),
        ("lyrics-missing", ["--provider", "minimax", "--refer-voice-file", str(voice)], "lyrics"),
    ]


CLI_REFUSALS = ("lyrics-201-cjk", "no-reference", "voice-file-missing", "voice-file-is-a-folder",
                "instrumental-file-empty", "file-and-id-together", "prompt-with-music-01", "extend-with-minimax",
                "minimax-flag-with-udio", "lyrics-missing")


@pytest.mark.parametrize("case", CLI_REFUSALS)
def test_cli_refuses_with_exit_2_before_any_upload(
    case: str, tmp_path: Path, recording_queue: type[RecordingQueue], capsys: pytest.CaptureFixture[str]
) -> None:
    args, named = next((args, named) for name, args, named in _cli_refusals(tmp_path) if name == case)
    assert cli.main(["submit", *args]) == exit_codes.EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert named in captured.err and captured.out == ""
    assert recording_queue.made == []  # no queue: nothing uploaded, nothing enqueued


def test_cli_uploads_each_reference_file_with_its_purpose(
    tmp_path: Path, recording_queue: type[RecordingQueue], capsys: pytest.CaptureFixture[str]
) -> None:
    voice, backing = _reference_file(tmp_path), _reference_file(tmp_path, "backing.mp3")
    argv = ["submit", "--provider", "minimax", "--lyrics", "##la##", "--model", "music-01",
            "--refer-voice-file", str(voice), "--refer-instrumental-file", str(backing)]
    assert cli.main(argv) == exit_codes.EXIT_OK
    [queue] = recording_queue.made
    assert queue.uploads == [(voice, "voice"), (backing, "instrumental")]
    [(request, provider)] = queue.submitted
    assert provider == "minimax"
    assert request.to_gen_params() == {"model": "music-01", "lyrics": "##la##", "refer_voice": "voice-uploaded",
                                       "refer_instrumental": "instrumental-uploaded"}


# --- end to end ----------------------------------------------------------------------------


@pytest.mark.integration
def test_minimax_job_uploads_the_voice_then_stores_the_hex_song(make_stack, sandbox, tmp_path: Path) -> None:
    s = make_stack(minimax_price_per_call="0.5")
    s.start_worker()
    lyrics = _lyrics("##晨光照进窗台\n\nSandbox sings")
    uploads_before = sandbox.stats()["minimax_uploads"]

    result = s.cli("submit", "--provider", "minimax", "--lyrics", lyrics, "--refer-voice-file",
                   str(_reference_file(tmp_path)), "--wait", "--timeout", "60", "--json")

    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["state"] == "SUCCEEDED" and view["error"] is None
    [song_view] = view["songs"]
    assert song_view["cover"] is None  # MiniMax makes none, and the job finalized without it
    record = s.queue().status(view["id"])
    assert (record.provider, record.model, record.cost) == ("minimax", "music-01", 0.5)
    assert record.request["refer_voice"].startswith("vocal-")
    [song] = record.songs
    assert song.title == "晨光照进窗台" and song.lyrics == lyrics
    # The upstream's bytes are the sandbox's MP3, decoded from hex; stored checked and tagged.
    served = audio.song_mp3(SONG_SECONDS, 1)
    assert song.audio.upstream_sha256 == hashlib.sha256(served).hexdigest()
    stored = _path(song_view["audio"]["uri"])
    assert abs(MP3(stored).info.length - song_view["duration"]) < 0.1
    assert ID3(stored)["TIT2"].text == ["晨光照进窗台"]
    manifest = json.loads(_path(record.manifest.uri).read_text())
    assert manifest["provider"] == "minimax" and manifest["songs"][0]["cover"] is None
    stats = sandbox.stats()
    assert stats["minimax_uploads"] == uploads_before + 1
    assert stats["generations_by_lyrics"][lyrics] == 1
    # The upload came first, and the generation referred to the id it issued.
    log = _request_log(sandbox)
    upload_seq = max(e["seq"] for e in log if e["path"] == "/minimaxi/v1/music_upload")
    [generation] = [e for e in log if e["path"] == "/minimaxi/v1/music_generation" and lyrics in e["body"]]
    assert upload_seq < generation["seq"]
    assert f'name="refer_voice"\r\n\r\n{record.request["refer_voice"]}\r\n' in generation["body"]
    assert sandbox.api_key not in result.stdout + result.stderr + s.worker_logs()


@pytest.mark.integration
def test_minimax_url_answer_is_downloaded(make_stack, sandbox, tmp_path: Path) -> None:
    s = make_stack()
    s.start_worker()
    lyrics = _lyrics("backing only sandbox:url")

    result = s.cli("submit", "--provider", "minimax", "--lyrics", lyrics, "--refer-instrumental-file",
                   str(_reference_file(tmp_path, "backing.mp3")), "--wait", "--timeout", "60", "--json")

    assert result.returncode == 0, result.stderr
    record = s.queue().status(json.loads(result.stdout)["id"])
    [song] = record.songs
    assert song.song_path.startswith(f"{sandbox.url}/minimax/audio/") and not song.staged_audio_key
    served = requests.get(song.song_path, timeout=10).content
    assert song.audio.upstream_sha256 == hashlib.sha256(served).hexdigest()
    assert record.request["refer_instrumental"].startswith("instrumental-")
    assert sandbox.stats()["generations_by_lyrics"][lyrics] == 1


@pytest.mark.integration
def test_minimax_refusal_fails_the_job_with_its_status_msg(make_stack, sandbox) -> None:
    s = make_stack()
    s.start_worker()
    queue = s.queue()
    voice = queue.upload_reference(_reference_file(Path(s.tmp)), "voice")
    lyrics = _lyrics("sandbox:minimax_error=1026")

    result = s.cli("submit", "--provider", "minimax", "--lyrics", lyrics, "--refer-voice", voice,
                   "--wait", "--timeout", "60", "--json")

    assert result.returncode == 1
    view = json.loads(result.stdout)
    assert view["state"] == "FAILED" and view["songs"] == []
    assert view["error"]["code"] == "upstream_rejected"
    assert "sensitive content" in view["error"]["message"] and "1026" in view["error"]["message"]
    assert lyrics not in sandbox.stats()["generations_by_lyrics"]
    # Nothing was stored but the manifest that records how the job ended (docs/architecture.md).
    stored = Path(s.tmp) / "objects" / "jobs" / view["id"]
    assert not stored.exists() or sorted(p.name for p in stored.iterdir()) == ["manifest.json"]


@pytest.mark.integration
def test_minimax_rate_limit_is_retried_then_gives_up(make_stack, sandbox) -> None:
    s = make_stack(max_transient_errors="1")
    s.start_worker()
    queue = s.queue()
    voice = queue.upload_reference(_reference_file(Path(s.tmp)), "voice")
    calls_before = sandbox.stats()["minimax_generation_requests"]

    job = queue.submit({"lyrics": _lyrics("sandbox:minimax_error=1002"), "refer_voice": voice}, provider="minimax")
    record = queue.wait(job.id, timeout=60)

    assert record.state.value == "FAILED" and record.error.code == "upstream_rate_limited"
    assert "gave up after 2 attempts" in record.error.message and "rate limit" in record.error.message
    assert sandbox.stats()["minimax_generation_requests"] - calls_before == 2


@pytest.mark.integration
def test_reference_files_are_checked_before_anything_is_sent(make_stack, sandbox, tmp_path: Path) -> None:
    s = make_stack()
    not_audio = tmp_path / "notes.txt"
    not_audio.write_text("not a song")
    before = sandbox.stats()

    missing = s.cli("submit", "--provider", "minimax", "--lyrics", "la", "--refer-voice-file", str(tmp_path / "x.mp3"))
    refused = s.cli("submit", "--provider", "minimax", "--lyrics", "la", "--refer-voice-file", str(not_audio))

    assert missing.returncode == 2 and "--refer-voice-file: cannot read" in missing.stderr
    # The upstream refused the upload: bad input, named, with the upstream's reason.
    assert refused.returncode == 2 and "--refer-voice-file" in refused.stderr and "not an audio file" in refused.stderr
    after = sandbox.stats()
    assert after["minimax_uploads"] == before["minimax_uploads"]
    assert after["minimax_upload_requests"] == before["minimax_upload_requests"] + 1
    assert s.queue().list() == []


@pytest.mark.parametrize(("refused", "code"), [(True, exit_codes.EXIT_BAD_INPUT), (False, exit_codes.EXIT_UNAVAILABLE)],
                         ids=["refused-is-bad-input", "unreachable-is-unavailable"])
def test_cli_upload_failure_exit_codes(
    refused: bool, code: int, tmp_path: Path, recording_queue: type[RecordingQueue], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fail(self: RecordingQueue, path: Path, purpose: str) -> str:
        raise UploadError("the MiniMax upload API said no", refused=refused)

    monkeypatch.setattr(RecordingQueue, "upload_reference", fail)
    argv = ["submit", "--provider", "minimax", "--lyrics", "la", "--refer-voice-file", str(_reference_file(tmp_path))]
    assert cli.main(argv) == code
    assert "--refer-voice-file: the MiniMax upload API said no" in capsys.readouterr().err
    assert recording_queue.made[0].submitted == []
