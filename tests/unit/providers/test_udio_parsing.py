"""The Udio gateway's answers, parsed from the vendor documents' own bodies (seeds 000-004),
and `call_json` against a real local HTTP server for every fault class of the contract."""

from __future__ import annotations

import copy
import json
from email.utils import formatdate
from pathlib import Path
from time import time
from typing import Any

import pytest
from pydantic import SecretStr

from tests.support.http_fixture import LocalServer, closed_port
from workers.providers.base import Outcome, UpstreamSong
from workers.providers.udio import UdioProvider, parse_fetch, parse_submit
from workers.upstream.errors import PermanentError, TransientError
from workers.upstream.http_client import call_json, parse_retry_after

# --- The vendor documents' response bodies, copied verbatim into tests/fixtures/udio/ ----------

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "udio"


def _vendor_body(name: str) -> str:
    # Read as text, not parsed: the tests feed the documents' exact bytes to the parsers.
    return (FIXTURES / name).read_text(encoding="utf-8")


# seed 000 (302.ai, POST /udio/generate-proxy): the 200 response example
SEED_000_SUBMIT = _vendor_body("seed-000-submit.json")

# seed 004 (302.ai, English docs): the response after the curl example
SEED_004_SUBMIT = _vendor_body("seed-004-submit.json")

# seed 001 (openai-hk): the submit response; `data` is a placeholder sentence
SEED_001_SUBMIT = _vendor_body("seed-001-submit.json")

# seed 001 (openai-hk, GET /udio/fetch/{task_id}): the response, tabs as published
SEED_001_FETCH = _vendor_body("seed-001-fetch.json")

# seed 002 (openai-hk API reference): the fetch example, one key per line as published
SEED_002_FETCH = _vendor_body("seed-002-fetch.json")

SEED_001_PATHS = (
    "https://storage.googleapis.com/udio-artifacts-c33fe3ba-3ffe-471f-92c8-5dfef90b3ea3/samples/"
    "28e06eb29c1c4abb9a50c8f6b127afb9/1/Whispers%2520of%2520the%2520Storm.mp3",
    "https://storage.googleapis.com/udio-artifacts-c33fe3ba-3ffe-471f-92c8-5dfef90b3ea3/samples/"
    "28e06eb29c1c4abb9a50c8f6b127afb9/2/Storm%2520Over%2520The%2520City.mp3",
)
SEED_002_PATHS = (
    "https://storage.googleapis.com/udio-artifacts-c33fe3ba-3ffe-471f-92c8-5dfef90b3ea3/samples/"
    "5945acbaf0094ba19b246932c4534ed2/1/Eternal%2520Waves%2520of%2520Emotion.mp3",
    "https://storage.googleapis.com/udio-artifacts-c33fe3ba-3ffe-471f-92c8-5dfef90b3ea3/samples/"
    "5945acbaf0094ba19b246932c4534ed2/2/Echoes%2520of%2520Affection.mp3",
)
# The contract's fields a song keeps, plus audio_bytes: the decoded inline audio of a
# synchronous provider (MiniMax), which Udio never sets.
SONG_FIELDS = {"id", "title", "song_path", "image_path", "duration", "lyrics", "tags", "finished", "audio_bytes",
               "audio_file"}


def _fetch_body(status: str | None = "IN_PROGRESS", **task: Any) -> dict[str, Any]:
    """Seed 001's fetch body with the task's fields replaced (None removes the field)."""
    body = json.loads(SEED_001_FETCH)
    body["data"]["status"] = status
    for name, value in task.items():
        body["data"][name] = value
    return {**body, "data": {k: v for k, v in body["data"].items() if v is not None}}


# --- submit ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [SEED_000_SUBMIT, SEED_004_SUBMIT], ids=["seed000", "seed004"])
def test_parse_submit_seed_bodies(seed: str) -> None:
    assert parse_submit(json.loads(seed)) == "69c61512-278e-4ff4-b6ea-f3b278329b04"


def test_parse_submit_takes_any_task_id_text_verbatim() -> None:
    # Seed 001 documents the id as a sentence; no format is assumed of it.
    assert parse_submit(json.loads(SEED_001_SUBMIT)) == "得到的task_id 给下一步 获取任务状态使用"


@pytest.mark.parametrize("data", [None, "", "   ", {"task_id": "x"}, ["x"], 42], ids=repr)
def test_parse_submit_without_task_id_is_transient_maybe_accepted(data: Any) -> None:
    body = {"code": "success", "message": "", "data": data}
    with pytest.raises(TransientError) as caught:
        parse_submit(body)
    assert caught.value.code == "upstream_malformed"
    assert caught.value.maybe_accepted is True


# --- fetch: the seed bodies ------------------------------------------------------------------


def test_parse_fetch_seed_001() -> None:
    status = parse_fetch(json.loads(SEED_001_FETCH))
    assert status.outcome is Outcome.SUCCEEDED
    assert (status.raw_status, status.progress, status.fail_reason) == ("SUCCESS", 100, "")
    assert [s.id for s in status.songs] == ["db71404a-17d4-4fdf-a781-48381362d31b",
                                            "e7da256c-e2bf-4b0e-9ef9-0b906d5043f7"]
    first, second = status.songs
    assert (first.title, second.title) == ("Whispers of the Storm", "Storm Over The City")
    # Byte-for-byte: still encoded twice, neither decoded nor re-encoded.
    assert (first.song_path, second.song_path) == SEED_001_PATHS
    assert "%2520" in first.song_path and " " not in first.song_path and "%20of" not in first.song_path
    assert first.image_path == ("https://imagedelivery.net/C9yUr1FL21Q6JwfYYh2ozQ/"
                                "a7888419-167e-408b-42d3-7aa6f777ff00/public")
    for song in status.songs:
        assert type(song.duration) is float and song.duration == pytest.approx(32.8106666666667, abs=1e-12)
        assert song.finished is True
        assert song.lyrics == ""
    assert first.tags == ["mandopop", "2010s"]
    assert len(second.tags) == 15 and second.tags[0] == "female vocalist" and "contemporary r&b" in second.tags


def test_parse_fetch_seed_002_one_key_per_line_with_cjk_lyrics() -> None:
    status = parse_fetch(json.loads(SEED_002_FETCH))
    assert status.outcome is Outcome.SUCCEEDED and status.progress == 100
    assert [s.title for s in status.songs] == ["Eternal Waves of Emotion", "Echoes of Affection"]
    assert tuple(s.song_path for s in status.songs) == SEED_002_PATHS
    first, second = status.songs
    assert first.id == "2ff9b3fb-842b-4a70-9708-61210edc2867"
    assert first.lyrics.startswith("[Verse]\n夜燈微微閃爍心\n伴隨回憶慢慢進入夢境")
    assert first.lyrics.endswith("[Chorus]\n愛的旋律永不凋零\n情感的波浪輕輕震動")
    assert "\n\n[Chorus]\n握住你的手 感受心的魔法" in second.lyrics
    assert second.tags == ["male vocalist", "pop", "melodic", "romantic", "love"]
    assert all(type(s.duration) is float for s in status.songs)


def test_unknown_song_fields_are_ignored_not_rejected() -> None:
    body = json.loads(SEED_001_FETCH)
    extra = body["data"]["data"]["songs"][0]
    extra.update({"stems": {"vocals": "x"}, "brand_new_field": [1, 2], "liked": "maybe"})
    status = parse_fetch(body)
    assert len(status.songs) == 2
    assert {f for f in UpstreamSong.__dataclass_fields__} == SONG_FIELDS
    assert all(song.audio_bytes is None for song in status.songs)
    assert status.songs[0] == parse_fetch(json.loads(SEED_001_FETCH)).songs[0]


# --- fetch: shapes and states ----------------------------------------------------------------


def test_songs_directly_under_data_are_accepted() -> None:
    nested = parse_fetch(json.loads(SEED_001_FETCH))
    body = json.loads(SEED_001_FETCH)
    body["data"]["songs"] = body["data"].pop("data")["songs"]
    flat = parse_fetch(body)
    assert flat.songs == nested.songs and len(flat.songs) == 2
    # An inner `data` that is present but has no songs does not hide the flat ones.
    body["data"]["data"] = {}
    assert parse_fetch(body).songs == nested.songs


@pytest.mark.parametrize("inner", [
    None, {}, {"songs": []}, {"songs": None}, [], "",
], ids=["no-inner-data", "empty-inner", "empty-songs", "null-songs", "list", "string"])
def test_missing_or_empty_songs_while_running(inner: Any) -> None:
    body = _fetch_body("IN_PROGRESS", progress="37%")
    if inner is None:
        del body["data"]["data"]
    else:
        body["data"]["data"] = inner
    status = parse_fetch(body)
    assert status.outcome is Outcome.RUNNING
    assert status.songs == []
    assert status.progress == 37


NON_TERMINAL = ["", None, "NOT_START", "SUBMITTED", "QUEUED", "IN_PROGRESS", "UNKNOWN",
                "not_start", "submitted", "queued", "in_progress", "streaming", "unknown"]


@pytest.mark.parametrize("raw", NON_TERMINAL, ids=[repr(s) for s in NON_TERMINAL])
def test_every_non_terminal_status_is_running(raw: str | None) -> None:
    body = _fetch_body(raw, progress="50%")
    status = parse_fetch(body)
    assert status.outcome is Outcome.RUNNING
    assert status.raw_status == (raw or "")
    assert status.progress == 50


def test_status_field_missing_is_running() -> None:
    body = _fetch_body("x")
    del body["data"]["status"]
    assert parse_fetch(body).outcome is Outcome.RUNNING


def test_failure_carries_fail_reason() -> None:
    body = _fetch_body("FAILURE", fail_reason="内容违规 / prompt rejected by moderation", progress="0%")
    del body["data"]["data"]
    status = parse_fetch(body)
    assert status.outcome is Outcome.FAILED
    assert status.fail_reason == "内容违规 / prompt rejected by moderation"
    assert status.songs == []


def test_success_always_reports_100_percent() -> None:
    assert parse_fetch(_fetch_body("SUCCESS", progress="95%")).progress == 100


@pytest.mark.parametrize(("progress", "expected"), [
    ("0%", 0), ("37%", 37), (" 42 % ", 42), ("99.9%", 99), (55, 55), (150, 100), ("-5%", 0),
    ("", 0), ("abc", 0), (None, 0),
])
def test_progress_percent_strings(progress: Any, expected: int) -> None:
    body = _fetch_body("IN_PROGRESS", progress="0%")
    body["data"]["progress"] = progress
    assert parse_fetch(body).progress == expected


def test_sibling_finishes_separately() -> None:
    body = _fetch_body("IN_PROGRESS")
    songs = body["data"]["data"]["songs"]
    songs[1]["finished"] = False
    songs[1]["song_path"] = ""
    first, second = parse_fetch(body).songs
    assert first.finished is True and first.song_path == SEED_001_PATHS[0]
    assert second.finished is False and second.song_path == ""


@pytest.mark.parametrize("finished", ["true", 1, None, "yes"], ids=repr)
def test_only_boolean_true_means_finished(finished: Any) -> None:
    body = _fetch_body("IN_PROGRESS")
    body["data"]["data"]["songs"][0]["finished"] = finished
    assert parse_fetch(body).songs[0].finished is False


def test_odd_song_entries() -> None:
    body = _fetch_body("IN_PROGRESS")
    songs = body["data"]["data"]["songs"]
    songs[0].update(duration="32.8", tags="pop, rock", title=None, lyrics=None)
    songs.extend([{"title": "no id"}, "not a song", None, {"id": ""}])
    status = parse_fetch(body)
    assert [s.id for s in status.songs] == [songs[0]["id"], songs[1]["id"]]
    first = status.songs[0]
    assert (first.duration, first.tags, first.title, first.lyrics) == (None, [], "", "")


# --- the envelope ----------------------------------------------------------------------------


@pytest.mark.parametrize("parse", [parse_submit, parse_fetch], ids=["submit", "fetch"])
def test_code_not_success_is_permanent_with_the_upstream_message(parse: Any) -> None:
    body = {"code": "error", "message": "余额不足 insufficient quota", "data": None}
    with pytest.raises(PermanentError) as caught:
        parse(body)
    assert caught.value.code == "upstream_rejected"
    assert "余额不足 insufficient quota" in caught.value.message
    assert "余额不足 insufficient quota" in str(caught.value)


@pytest.mark.parametrize("parse", [parse_submit, parse_fetch], ids=["submit", "fetch"])
def test_code_not_success_without_message_names_the_code(parse: Any) -> None:
    with pytest.raises(PermanentError) as caught:
        parse({"code": "quota_exceeded", "message": "", "data": ""})
    assert "quota_exceeded" in caught.value.message


@pytest.mark.parametrize("body", [
    {"message": "", "data": "69c61512"}, {}, [], None, "success", 42, [{"code": "success"}],
], ids=["no-code", "empty-dict", "list", "none", "string", "int", "list-of-dict"])
@pytest.mark.parametrize("parse", [parse_submit, parse_fetch], ids=["submit", "fetch"])
def test_missing_code_or_non_dict_is_transient(parse: Any, body: Any) -> None:
    with pytest.raises(TransientError) as caught:
        parse(body)
    assert caught.value.code == "upstream_malformed"


@pytest.mark.parametrize("data", [None, "", "task", [1]], ids=repr)
def test_fetch_without_task_object_is_transient(data: Any) -> None:
    with pytest.raises(TransientError):
        parse_fetch({"code": "success", "message": "", "data": data})


# --- Retry-After -----------------------------------------------------------------------------


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after("0") == 0.0
    for junk in (None, "", "soon", "-1", "1.5"):
        assert parse_retry_after(junk) is None, junk
    assert parse_retry_after(formatdate(time() - 3600, usegmt=True)) == 0.0
    ahead = parse_retry_after(formatdate(time() + 120, usegmt=True))
    assert ahead is not None and 100 < ahead <= 121


# --- call_json against a real local server ---------------------------------------------------


def _call(session, url: str, max_bytes: int = 1 << 20, timeout: float = 5.0, method: str = "GET") -> Any:
    return call_json(session, method, url, timeout=timeout, max_bytes=max_bytes)


def test_200_json_round_trips_the_seed_body(server: LocalServer, session) -> None:
    url = server.route("/udio/fetch/t1", body=SEED_002_FETCH.encode(), headers={"Content-Type": "application/json"})
    assert _call(session, url) == json.loads(SEED_002_FETCH)


def test_429_with_retry_after(server: LocalServer, session) -> None:
    url = server.route("/r", status=429, headers={"Retry-After": "3"}, body=b'{"message": "slow down"}')
    with pytest.raises(TransientError) as caught:
        _call(session, url)
    assert caught.value.code == "upstream_rate_limited"
    assert caught.value.retry_after == 3
    assert caught.value.maybe_accepted is False


def test_429_without_retry_after(server: LocalServer, session) -> None:
    url = server.route("/r", status=429, body=b"Too Many Requests")
    with pytest.raises(TransientError) as caught:
        _call(session, url)
    assert caught.value.code == "upstream_rate_limited"
    assert caught.value.retry_after is None


CDN_PAGE = (b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title>"
            b"<style>body{color:red}</style></head>\n<body><h1>Service Temporarily Unavailable</h1>"
            b"<p>The server is <b>overloaded</b>.</p></body></html>")


def test_503_html_page_is_transient_and_described_not_quoted(server: LocalServer, session) -> None:
    url = server.route("/r", status=503, body=CDN_PAGE, headers={"Content-Type": "text/html"})
    with pytest.raises(TransientError) as caught:
        _call(session, url)
    message = caught.value.message
    assert caught.value.code == "upstream_unavailable"
    assert f"HTTP 503 with an HTML body of {len(CDN_PAGE)} bytes" in message
    # The page is bytes from elsewhere: a job's error (read by its tenant) never quotes them.
    assert "Service Temporarily Unavailable" not in message and "overloaded" not in message


def test_502_empty_body(server: LocalServer, session) -> None:
    url = server.route("/r", status=502)
    with pytest.raises(TransientError) as caught:
        _call(session, url)
    assert "HTTP 502 with an empty body" in caught.value.message


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_4xx_json_is_permanent_and_described(server: LocalServer, session, status: int) -> None:
    body = json.dumps({"code": "error", "message": "gen_params.prompt 不能为空"}, ensure_ascii=False).encode()
    url = server.route("/r", status=status, body=body)
    with pytest.raises(PermanentError) as caught:
        _call(session, url, method="POST")
    assert caught.value.code == "upstream_rejected" and caught.value.http_status == status
    assert f"HTTP {status} with a JSON body of {len(body)} bytes" in caught.value.message
    assert "gen_params" not in caught.value.message


def test_200_not_json_is_transient_maybe_accepted(server: LocalServer, session) -> None:
    url = server.route("/r", body=b"<html><body>OK, queued</body></html>")
    with pytest.raises(TransientError) as caught:
        _call(session, url, method="POST")
    assert caught.value.code == "upstream_malformed"
    assert caught.value.maybe_accepted is True
    assert "HTML body of 36 bytes" in caught.value.message and "queued" not in caught.value.message


def test_body_over_max_bytes(server: LocalServer, session) -> None:
    body = json.dumps({"code": "success", "data": "x" * 5000}).encode()
    url = server.route("/r", body=body)
    assert _call(session, url, max_bytes=len(body))["data"] == "x" * 5000  # exactly the cap is fine
    with pytest.raises(PermanentError) as caught:
        _call(session, url, max_bytes=len(body) - 1)
    assert caught.value.code == "upstream_body_too_large"


def test_connection_refused_is_unreachable(session) -> None:
    with pytest.raises(TransientError) as caught:
        _call(session, f"http://127.0.0.1:{closed_port()}/udio/fetch/x", method="POST")
    assert caught.value.code == "upstream_unreachable"
    assert caught.value.maybe_accepted is False


def test_read_timeout_may_have_been_accepted(server: LocalServer, session) -> None:
    url = server.route("/slow", handler=lambda h: server.released.wait(10))
    with pytest.raises(TransientError) as caught:
        _call(session, url, timeout=0.3, method="POST")
    assert caught.value.code == "upstream_timeout"
    assert caught.value.maybe_accepted is True


def test_connection_dropped_after_sending_may_have_been_accepted(server: LocalServer, session) -> None:
    """Closed without a status line, after the request was read: it may have been acted on."""
    url = server.route("/drop", handler=lambda h: setattr(h, "close_connection", True))
    with pytest.raises(TransientError) as caught:
        _call(session, url, method="POST")
    assert caught.value.code == "upstream_dropped"
    assert caught.value.maybe_accepted is True


@pytest.mark.parametrize("status", [500, 502, 504])
def test_5xx_may_have_been_accepted(server: LocalServer, session, status: int) -> None:
    """A proxy's 5xx page can stand in front of an answer the gateway did give."""
    url = server.route("/proxy", status=status, body=b"<html><h1>Bad Gateway</h1></html>",
                       headers={"Content-Type": "text/html"})
    with pytest.raises(TransientError) as caught:
        _call(session, url, method="POST")
    assert caught.value.code == "upstream_unavailable" and f"HTTP {status}" in caught.value.message
    assert caught.value.maybe_accepted is True


def test_oversized_success_may_have_been_billed(server: LocalServer, session) -> None:
    url = server.route("/big", body=json.dumps({"code": "success", "data": "x" * 5000}).encode())
    with pytest.raises(PermanentError) as caught:
        _call(session, url, max_bytes=100, method="POST")
    assert caught.value.code == "upstream_body_too_large" and caught.value.maybe_accepted is True


def _cut_off(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b'{"code": "succ')


def test_body_cut_off_is_transient_maybe_accepted(server: LocalServer, session) -> None:
    url = server.route("/cut", handler=_cut_off)
    with pytest.raises(TransientError) as caught:
        _call(session, url, method="POST")
    assert caught.value.code == "upstream_broken_body"
    assert caught.value.maybe_accepted is True


# --- the provider over HTTP: paths, auth, body -----------------------------------------------


@pytest.mark.parametrize("submit_path", ["/udio/generate-proxy", "udio/submit/music"])
def test_provider_submit_and_fetch_over_http(server: LocalServer, session, submit_path: str) -> None:
    server.route("/" + submit_path.lstrip("/"), body=SEED_000_SUBMIT.encode())
    server.route("/udio/fetch/69c61512-278e-4ff4-b6ea-f3b278329b04", body=SEED_001_FETCH.encode())
    provider = UdioProvider(server.url("/"), SecretStr("sk-test"), submit_path, session, timeout=5, max_json_bytes=1 << 20)
    gen_params = {"prompt": "大风大雨", "lyrics": "", "config": {"mode": "regular"}}
    task_id = provider.submit(copy.deepcopy(gen_params))
    status = provider.fetch(task_id)
    assert task_id == "69c61512-278e-4ff4-b6ea-f3b278329b04"
    assert status.outcome is Outcome.SUCCEEDED and len(status.songs) == 2
    (m1, p1, h1, b1), (m2, p2, h2, _) = server.requests
    assert (m1, p1) == ("POST", "/" + submit_path.lstrip("/"))
    assert json.loads(b1) == {"gen_params": gen_params}  # no hook given, none sent
    assert (m2, p2) == ("GET", "/udio/fetch/69c61512-278e-4ff4-b6ea-f3b278329b04")
    assert h1["Authorization"] == h2["Authorization"] == "Bearer sk-test"
    assert h1["Content-Type"] == "application/json"


def test_provider_sends_the_jobs_notify_url_beside_gen_params(server: LocalServer, session) -> None:
    server.route("/udio/generate-proxy", body=SEED_000_SUBMIT.encode())
    provider = UdioProvider(server.url("/"), SecretStr("sk-test"), "/udio/generate-proxy", session, timeout=5,
                            max_json_bytes=1 << 20, notify_field="callback")
    hook = "https://hooks.example.com/hooks/udio?job=j1&sig=abc"
    provider.submit({"prompt": "x"}, notify_hook=hook)
    (_, _, _, body), = server.requests
    assert json.loads(body) == {"gen_params": {"prompt": "x"}, "callback": hook}


@pytest.mark.parametrize(("stamps", "took"), [
    ({"submit_time": 1731344339, "finish_time": 1731344393}, 54.0),  # the contract's own example
    ({"submit_time": 1731344339, "finish_time": 0}, None),  # not set
    ({"submit_time": 1731344339}, None),
    ({"submit_time": "1731344339", "finish_time": "1731344393"}, None),  # not numbers
    ({"submit_time": True, "finish_time": 1731344393}, None),
    ({"submit_time": 1731344393, "finish_time": 1731344339}, None),  # out of order
])
def test_an_ended_task_says_what_it_took_by_its_own_stamps(stamps: dict[str, Any], took: float | None) -> None:
    body = {"code": "success", "data": {"task_id": "t", "status": "SUCCESS", "progress": "100%", **stamps,
                                        "data": {"songs": []}}}
    assert parse_fetch(body).took == took
    running = {"code": "success", "data": {**body["data"], "status": "IN_PROGRESS"}}
    assert parse_fetch(running).took is None  # a running task's finish_time means nothing yet
