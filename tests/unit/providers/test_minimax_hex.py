"""MiniMax's hex answer decoded as a stream (workers/providers/minimax_hex.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr

from sandbox import audio
from tests.support.http_fixture import LocalServer
from workers.artifacts import inline_audio
from workers.artifacts.manifest import staged_audio_key
from workers.providers.base import InlineAudio
from workers.providers.minimax import MiniMaxProvider, parse_generation
from workers.providers.minimax_hex import HexAudioSink
from workers.storage.file import FileStorage
from workers.upstream.errors import PermanentError

# A real MP3's start: its head sniffs as MP3, and it keeps every-offset runs fast.
MP3 = audio.song_mp3(0.3, 1)[:300]
OK = {"status_code": 0, "status_msg": "success"}
EXTRA = {"music_duration": 300, "audio_size": len(MP3), "note": "a \"quoted\" {brace} [and] \\ audio"}

# The same answer with its keys in different orders, and a decoy "audio" outside data.
ORDERS = {
    "data-first": {"data": {"audio": MP3.hex(), "status": 2}, "extra_info": EXTRA, "base_resp": OK},
    "audio-last": {"base_resp": OK, "extra_info": EXTRA, "data": {"status": 2, "audio": MP3.hex()}},
    "decoys": {"audio": "not-this", "extra_info": {**EXTRA, "data": {"audio": "nor-this"}},
               "data": {"x": ["audio", {"audio": "no"}], "status": 2, "audio": MP3.hex().upper()},
               "base_resp": OK, "trace_id": "t-1"},
}


def _feed(body: bytes, cut: int | None, tmp_path: Path, *, cap: int = 1 << 20, rest: int = 1 << 16) -> HexAudioSink:
    sink = HexAudioSink(max_audio_bytes=cap, max_rest_bytes=rest, spool_dir=str(tmp_path))
    chunks = [body] if cut is None else [body[:cut], body[cut:]]
    for chunk in chunks:
        sink.feed(chunk)
    return sink


@pytest.mark.parametrize("order", list(ORDERS))
def test_every_chunk_boundary_gives_the_same_audio_and_rest(order: str, tmp_path: Path) -> None:
    answer = ORDERS[order]
    body = json.dumps(answer, indent=1 if order == "decoys" else None).encode()
    expected_rest = json.loads(body)
    expected_rest["data"]["audio"] = ""
    for cut in range(len(body) + 1):
        sink = _feed(body, cut, tmp_path)
        rest = json.loads(sink.finish())
        assert rest == expected_rest, cut
        assert sink.audio is not None
        assert sink.audio.path.read_bytes() == MP3, cut
        assert (sink.audio.size, sink.audio.sha256) == (len(MP3), hashlib.sha256(MP3).hexdigest())
        assert sink.audio.head == MP3[:16]
        sink.discard()
        assert not sink.audio.path.exists()
    assert list(tmp_path.iterdir()) == []


def test_one_byte_chunks_and_whitespace_in_the_hex(tmp_path: Path) -> None:
    spaced = " ".join(MP3.hex()[i:i + 64] for i in range(0, 2 * len(MP3), 64))
    body = json.dumps({"data": {"audio": spaced}, "base_resp": OK}).encode()
    sink = HexAudioSink(max_audio_bytes=1 << 20, max_rest_bytes=1 << 16, spool_dir=str(tmp_path))
    for i in range(len(body)):
        sink.feed(body[i:i + 1])
    assert json.loads(sink.finish()) == {"data": {"audio": ""}, "base_resp": OK}
    assert sink.audio is not None and sink.audio.path.read_bytes() == MP3
    sink.discard()


@pytest.mark.parametrize("value", ["https://cdn.example/a.mp3", "https:\\/\\/cdn.example\\/a.mp3", "abc", "", "zz"])
def test_a_url_or_short_or_non_hex_value_is_left_in_the_rest(value: str, tmp_path: Path) -> None:
    body = ('{"data": {"audio": "' + value + '"}, "base_resp": {"status_code": 0}}').encode()
    for cut in range(len(body) + 1):
        sink = _feed(body, cut, tmp_path)
        assert json.loads(sink.finish()) == json.loads(body), cut
        assert sink.audio is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("hex_text", "why"), [
    (MP3.hex() + "a", "odd number of hex digits"),
    (MP3.hex()[:40] + "zz" + MP3.hex()[42:], "neither a URL nor hex"),
    (MP3.hex()[:40] + "\\u0030" + MP3.hex()[40:], "neither a URL nor hex"),
], ids=["odd", "invalid-digit", "escape"])
def test_bad_hex_is_refused_as_a_billed_answer(hex_text: str, why: str, tmp_path: Path) -> None:
    body = ('{"data": {"audio": "' + hex_text + '"}, "base_resp": {"status_code": 0}}').encode()
    for cut in (None, 30, 31, len(body) // 2, len(body) - 40):
        sink = HexAudioSink(max_audio_bytes=1 << 20, max_rest_bytes=1 << 16, spool_dir=str(tmp_path))
        with pytest.raises(PermanentError, match=why) as caught:
            for chunk in ([body] if cut is None else [body[:cut], body[cut:]]):
                sink.feed(chunk)
            sink.finish()
        assert caught.value.code == "upstream_malformed" and caught.value.maybe_accepted
        sink.discard()
    assert list(tmp_path.iterdir()) == []


def test_over_the_cap_counts_decoded_bytes(tmp_path: Path) -> None:
    body = json.dumps({"data": {"audio": MP3.hex()}, "base_resp": OK}).encode()
    # Exactly the cap in decoded bytes passes, although the hex is twice as long.
    _feed(body, None, tmp_path, cap=len(MP3)).discard()
    sink = HexAudioSink(max_audio_bytes=len(MP3) - 1, max_rest_bytes=1 << 16, spool_dir=str(tmp_path))
    with pytest.raises(PermanentError, match="exceeds the cap") as caught:
        sink.feed(body)
    assert caught.value.code == "download_too_large" and caught.value.maybe_accepted
    sink.discard()
    assert list(tmp_path.iterdir()) == []


def test_the_rest_of_the_answer_is_capped(tmp_path: Path) -> None:
    body = json.dumps({"data": {"audio": "https://cdn.example/" + "a" * 500}, "base_resp": OK}).encode()
    with pytest.raises(PermanentError, match="besides its audio") as caught:
        _feed(body, None, tmp_path, rest=100)
    assert caught.value.code == "upstream_body_too_large" and caught.value.maybe_accepted


def test_a_streamed_song_is_parsed_and_staged_from_its_spool_file(tmp_path: Path) -> None:
    body = json.dumps(ORDERS["data-first"]).encode()
    sink = _feed(body, 100, tmp_path / "spool")
    song = parse_generation(json.loads(sink.finish()), "[Verse]\nla la", inline=sink.audio)
    assert song.audio_file == sink.audio and song.audio_bytes is None and song.title == "la la"
    assert song.id == "minimax-" + hashlib.sha256(MP3).hexdigest()[:16] and song.duration == 0.3
    storage = FileStorage(tmp_path / "store")
    key = inline_audio.stage_file(storage, "job1", 0, song.audio_file, max_bytes=len(MP3))
    assert key == staged_audio_key("job1", 0)
    with storage.open(key) as stored:
        assert stored.read() == MP3
    assert list((tmp_path / "spool").iterdir()) == []  # staging took the spool file away


@pytest.mark.parametrize(("data", "cap", "code"), [
    (b"<html>error</html>", 1000, "download_not_audio"), (MP3, len(MP3) - 1, "download_too_large"),
], ids=["not-mp3", "over-cap"])
def test_staging_a_spool_file_refuses_like_a_download(data: bytes, cap: int, code: str, tmp_path: Path) -> None:
    path = tmp_path / "x.part"
    path.write_bytes(data)
    inline = InlineAudio(path, len(data), hashlib.sha256(data).hexdigest(), data[:16])
    with pytest.raises(PermanentError) as caught:
        inline_audio.stage_file(FileStorage(tmp_path / "store"), "job1", 0, inline, max_bytes=cap)
    assert caught.value.code == code and not path.exists()


# --- the provider over HTTP ---------------------------------------------------------------


def _provider(server: LocalServer, session: requests.Session, spool: Path, cap: int) -> MiniMaxProvider:
    return MiniMaxProvider(server.url("/"), SecretStr("sk-test"), session, timeout=5, max_json_bytes=4096,
                           max_audio_bytes=cap, spool_dir=str(spool))


def test_the_provider_streams_a_hex_answer_larger_than_the_json_cap(server: LocalServer, session: requests.Session,
                                                                     tmp_path: Path) -> None:
    song_bytes = audio.song_mp3(0.3, 1)  # 2x its size in hex is far over the 4096-byte JSON cap
    body = {"data": {"audio": song_bytes.hex(), "status": 2}, "extra_info": EXTRA, "base_resp": OK}
    server.route("/minimaxi/v1/music_generation", body=json.dumps(body).encode())
    [song] = _provider(server, session, tmp_path, cap=len(song_bytes)).generate({"model": "music-2.6", "lyrics": "la"})
    assert song.audio_file is not None and song.audio_file.path.read_bytes() == song_bytes
    assert song.audio_file.sha256 == hashlib.sha256(song_bytes).hexdigest()


@pytest.mark.parametrize(("answer", "code"), [
    ({"data": {"audio": MP3.hex()}, "base_resp": OK}, "download_too_large"),
    ({"data": {"audio": MP3.hex() + "0"}, "base_resp": OK}, "upstream_malformed"),
    ({"data": {"audio": MP3.hex()}, "base_resp": {"status_code": 2013, "status_msg": "bad params"}},
     "upstream_rejected"),
], ids=["over-cap", "odd", "refused-after-hex"])
def test_a_refused_answer_leaves_no_spool_file(answer: dict[str, object], code: str, server: LocalServer,
                                               session: requests.Session, tmp_path: Path) -> None:
    server.route("/minimaxi/v1/music_generation", body=json.dumps(answer).encode())
    with pytest.raises(PermanentError) as caught:
        _provider(server, session, tmp_path, cap=len(MP3) - 1 if code == "download_too_large" else len(MP3)).generate(
            {"model": "music-2.6", "lyrics": "la"})
    assert caught.value.code == code
    # A billed answer we cannot use is charged; a refusal in base_resp was not billed.
    assert caught.value.maybe_accepted is (code != "upstream_rejected")
    assert list(tmp_path.iterdir()) == []


def test_an_error_page_is_not_fed_to_the_sink(server: LocalServer, session: requests.Session, tmp_path: Path) -> None:
    server.route("/minimaxi/v1/music_generation", status=503,
                 body=json.dumps({"data": {"audio": MP3.hex()}, "message": "overloaded"}).encode())
    with pytest.raises(Exception, match="HTTP 503") as caught:
        _provider(server, session, tmp_path, cap=len(MP3)).generate({"model": "music-2.6", "lyrics": "la"})
    assert getattr(caught.value, "code", "") == "upstream_unavailable"
    assert list(tmp_path.iterdir()) == []
