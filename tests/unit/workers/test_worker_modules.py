"""Small worker modules: the retry policy, media sniffing, storage keys, file storage, and the
downloader against a real local HTTP server."""

from __future__ import annotations

import gzip
import hashlib
import random
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from producer.core import url_guard
from producer.core.models.job_record import CallbackAttempt
from producer.core.settings import Settings, describe_settings_error
from producer.core.url_guard import UrlPolicy
from tests.support.http_fixture import LocalServer, closed_port
from workers import retry_policy
from workers.artifacts.downloader import check_url, download_to_storage, sniff_audio, sniff_image
from workers.artifacts.manifest import audio_key, check_key, cover_key, job_prefix, manifest_key
from workers.callback_schedule import keep, next_delay
from workers.retry_policy import backoff_delay, look_again, next_poll_delay, retry_or_give_up
from workers.storage.file import FileStorage
from workers.upstream.errors import PermanentError, TransientError

# --- retry_policy ----------------------------------------------------------------------------

MIN, MAX = 2.0, 30.0


@pytest.mark.parametrize("progress", [0, 1, 5, 50, 99, 100])
@pytest.mark.parametrize("elapsed", [0.0, 0.5, 3.0, 40.0, 600.0, 36000.0])
def test_next_poll_delay_stays_within_bounds(elapsed: float, progress: int) -> None:
    assert MIN <= next_poll_delay(elapsed, progress, MIN, MAX) <= MAX


def test_next_poll_delay_without_progress_is_half_the_wait_so_far() -> None:
    assert next_poll_delay(10.0, 0, MIN, MAX) == 5.0
    assert next_poll_delay(10.0, 100, MIN, MAX) == 5.0
    assert next_poll_delay(1.0, 0, MIN, MAX) == MIN
    assert next_poll_delay(1000.0, 0, MIN, MAX) == MAX


def test_next_poll_delay_aims_just_short_of_the_expected_finish() -> None:
    # 20 s for 25%: 60 s to go, so look again in 0.9 x 60 = 54 s (then clamped).
    assert next_poll_delay(20.0, 25, 1.0, 100.0) == pytest.approx(54.0)
    assert next_poll_delay(20.0, 25, MIN, MAX) == MAX
    # 90 s for 90%: 10 s to go -> 9 s, which lands before the finish; the next poll then
    # has at most about a second to go and waits the minimum.
    assert next_poll_delay(90.0, 90, MIN, MAX) == pytest.approx(9.0)
    assert next_poll_delay(99.0, 99, MIN, MAX) == MIN


def test_next_poll_delay_is_monotonic() -> None:
    # More progress at the same elapsed time: never a longer wait.
    for elapsed in (5.0, 30.0, 120.0):
        delays = [next_poll_delay(elapsed, p, MIN, MAX) for p in range(1, 100)]
        assert delays == sorted(delays, reverse=True), elapsed
    # Same progress, more time elapsed: never a shorter wait.
    for progress in (0, 10, 50, 90):
        delays = [next_poll_delay(float(t), progress, MIN, MAX) for t in range(0, 400, 7)]
        assert delays == sorted(delays), progress


@pytest.mark.parametrize(("failures", "ceiling"), [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (50, 60.0)])
def test_backoff_delay_full_jitter_within_half_to_ceiling(failures: int, ceiling: float) -> None:
    delays = [backoff_delay(failures, base=1.0, cap=60.0) for _ in range(300)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1  # jittered, not constant


def test_backoff_delay_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry_policy.random, "uniform", lambda low, high: low)
    assert backoff_delay(4, base=2.0, cap=60.0) == 8.0
    monkeypatch.setattr(retry_policy.random, "uniform", lambda low, high: high)
    assert backoff_delay(4, base=2.0, cap=60.0) == 16.0
    assert backoff_delay(10, base=2.0, cap=60.0) == 60.0


def test_backoff_delay_honours_retry_after_up_to_cap() -> None:
    random.seed(7)
    for _ in range(50):
        assert backoff_delay(1, base=1.0, cap=60.0, retry_after=30.0) == 30.0  # never undercut
        assert backoff_delay(1, base=1.0, cap=60.0, retry_after=3600.0) == 60.0  # capped
        # A Retry-After shorter than the backoff does not shorten it.
        assert 16.0 <= backoff_delay(6, base=1.0, cap=60.0, retry_after=0.5) <= 32.0
        assert backoff_delay(1, base=1.0, cap=60.0, retry_after=0.0) >= 0.5



class _Retried(Exception):
    def __init__(self, kwargs: dict, countdown: float) -> None:
        self.kwargs, self.countdown = kwargs, countdown


class _Task:
    """Just what retry_policy uses of a bound Celery task: the message's kwargs and retry."""

    def __init__(self, **kwargs: object) -> None:
        self.request = SimpleNamespace(kwargs=kwargs)

    def retry(self, kwargs: dict, countdown: float) -> _Retried:
        raise _Retried(kwargs, countdown)


def _policy_settings(**overrides: object) -> Settings:
    return Settings(redis_url="redis://unused", **{"max_transient_errors": 2, "retry_base_delay": 1.0,
                                                   "retry_max_delay": 60.0, **overrides})


def test_retry_or_give_up_counts_faults_in_the_message_and_honours_retry_after() -> None:
    given_up: list[str] = []
    with pytest.raises(_Retried) as retried:
        retry_or_give_up(_Task(once=True, faults=1), _policy_settings(), "poll", "HTTP 503",
                         retry_after=20.0, give_up=given_up.append)
    assert retried.value.kwargs == {"once": True, "faults": 2}, "other kwargs kept, the fault counted"
    assert retried.value.countdown == 20.0  # backoff ceiling 2s, Retry-After 20s
    assert given_up == []


def test_retry_or_give_up_gives_up_past_the_steps_bound() -> None:
    given_up: list[str] = []
    retry_or_give_up(_Task(faults=2), _policy_settings(), "download", "HTTP 503", give_up=given_up.append)
    assert given_up == ["gave up after 3 attempts: HTTP 503"]


def test_callback_schedule_is_the_standard_webhooks_one_by_default() -> None:
    delays = _policy_settings().callback_delays
    assert delays == (0, 5, 300, 1800, 7200, 18000, 36000, 36000) and sum(delays) > 24 * 3600
    assert [next_delay(delays, n) for n in range(1, 9)] == [5, 300, 1800, 7200, 18000, 36000, 36000, None]
    assert next_delay(delays, 1, retry_after=60) == 60  # a longer Retry-After is honoured
    assert next_delay(delays, 1, retry_after=10 ** 6) == 36000  # up to the schedule's longest wait


@pytest.mark.parametrize("bad", ["", "0,x", "5,-1", "1,inf"])
def test_a_bad_callback_schedule_names_the_setting(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _policy_settings(callback_schedule=bad)
    assert "SONGQUEUE_CALLBACK_SCHEDULE" in describe_settings_error(caught.value)


def test_the_attempt_log_keeps_every_end_and_only_the_latest_progress() -> None:
    delays = (0.0, 1.0)
    log: list[CallbackAttempt] = []
    for n in range(5):
        log = keep(log, CallbackAttempt(at=n, event="job.progress", delivery=f"p{n}", attempt=1), delays)
    for n in range(1, 4):
        log = keep(log, CallbackAttempt(at=10 + n, event="job.succeeded", delivery="end", attempt=n), delays)
    assert [a.delivery for a in log] == ["p3", "p4", "end", "end", "end"]


def test_look_again_starts_the_fault_count_over() -> None:
    with pytest.raises(_Retried) as retried:
        raise look_again(_Task(once=False, faults=4), 7.5)
    assert retried.value.kwargs == {"once": False} and retried.value.countdown == 7.5

# --- media types (downloader) --------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 "
GIF87 = b"GIF87a\x01\x00\x01\x00"
GIF89 = b"GIF89a\x01\x00\x01\x00"
ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x00"
FRAME = b"\xff\xfb\x90\x64" + b"\x00" * 8  # MPEG-1 layer III frame header
MP3_BODY = ID3 + (FRAME + bytes(range(256))) * 800  # ~200 KB
HTML = b"<!DOCTYPE html><html><body>Access Denied</body></html>"
JSON = b'{"code": "success", "data": null}'


@pytest.mark.parametrize(("head", "expected"), [
    (PNG, ("png", "image/png")),
    (JPEG, ("jpg", "image/jpeg")),
    (WEBP, ("webp", "image/webp")),
    (GIF87, ("gif", "image/gif")),
    (GIF89, ("gif", "image/gif")),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", (None, "application/octet-stream")),
    (ID3, (None, "application/octet-stream")),
    (HTML, (None, "application/octet-stream")),
    (b"", (None, "application/octet-stream")),
], ids=["png", "jpeg", "webp", "gif87a", "gif89a", "riff-wave", "mp3", "html", "empty"])
def test_sniff_image(head: bytes, expected: tuple) -> None:
    assert sniff_image(head) == expected


@pytest.mark.parametrize(("head", "is_mp3"), [
    (ID3, True),
    (FRAME, True),
    (b"\xff\xf3\x90\x00", True),  # MPEG-2 layer III
    (b"\xff\xe2", True),
    (MP3_BODY, True),
    (HTML, False),
    (JSON, False),
    (b"  " + ID3, False),
    (JPEG, False),  # 0xFF 0xD8: not a frame sync
    (PNG, False),
    (b"\xff", False),
    (b"", False),
    (b"id3", False),
], ids=["id3", "frame-sync", "mpeg2", "two-bytes", "whole-body", "html", "json", "leading-space",
        "jpeg", "png", "one-byte", "empty", "lowercase-id3"])
def test_sniff_audio(head: bytes, is_mp3: bool) -> None:
    expected = ("mp3", "audio/mpeg") if is_mp3 else (None, "application/octet-stream")
    assert sniff_audio(head) == expected


# --- storage keys (manifest) --------------------------------------------------------------------------


@pytest.mark.parametrize("key", [
    "../x", "a/../b", "..", "a/..", "/abs", "/etc/passwd", "a//b", "jobs//x", "", "jobs/é.mp3", "jobs/歌.mp3",
    ".hidden", "-rf", "a b", "a\\b", "jobs/x\n", "jobs/x\x00", "jobs/?x", "C:/x", "~/x",
], ids=repr)
def test_check_key_refuses(key: str) -> None:
    with pytest.raises(ValueError, match="unsafe storage key"):
        check_key(key)


@pytest.mark.parametrize("key", ["jobs/abc123/song-1.mp3", "a", "jobs/J_1.x/manifest.json", "x/y-z/w.png"])
def test_check_key_accepts(key: str) -> None:
    assert check_key(key) == key


def test_key_layout() -> None:
    job = "0f3c9a"
    assert job_prefix(job) == "jobs/0f3c9a"
    assert audio_key(job, 0) == "jobs/0f3c9a/song-1.mp3"
    assert audio_key(job, 1) == "jobs/0f3c9a/song-2.mp3"
    assert cover_key(job, 1, "webp") == "jobs/0f3c9a/song-2-cover.webp"
    assert manifest_key(job) == "jobs/0f3c9a/manifest.json"
    for bad in ("../x", "a/b/../../..", ""):
        with pytest.raises(ValueError):
            audio_key(bad, 0)


# --- FileStorage -----------------------------------------------------------------------------


def _files(root: Path) -> list[str]:
    """Every file under root, dot files included, as relative paths."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_put_and_stat(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    chunks = [b"ID3", b"", b"\x00" * 70_000, b"tail"]
    data = b"".join(chunks)
    stored = storage.put("jobs/j1/song-1.mp3", iter(chunks), "audio/mpeg")
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert (stored.key, stored.content_type) == ("jobs/j1/song-1.mp3", "audio/mpeg")
    assert stored.uri == (tmp_path / "jobs/j1/song-1.mp3").resolve().as_uri()
    assert (tmp_path / "jobs/j1/song-1.mp3").read_bytes() == data
    assert _files(tmp_path) == ["jobs/j1/song-1.mp3"]  # no temporary file left behind
    stat = storage.stat("jobs/j1/song-1.mp3")
    assert stat is not None
    assert (stat.size, stat.sha256, stat.uri) == (stored.size, stored.sha256, stored.uri)
    assert stat.content_type == "audio/mpeg"
    assert storage.stat("jobs/j1/song-2.mp3") is None
    assert storage.stat("jobs/j1") is None  # a directory is not an object


def test_put_empty_object(tmp_path: Path) -> None:
    stored = FileStorage(tmp_path).put("jobs/j1/manifest.json", [], "application/json")
    assert (stored.size, stored.sha256) == (0, hashlib.sha256(b"").hexdigest())


def _broken(after: int) -> Iterator[bytes]:
    for _ in range(after):
        yield b"x" * 1000
    raise ConnectionResetError("peer went away")


def test_put_that_fails_midway_leaves_nothing(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    with pytest.raises(ConnectionResetError):
        storage.put("jobs/j1/song-1.mp3", _broken(5), "audio/mpeg")
    assert storage.stat("jobs/j1/song-1.mp3") is None
    assert _files(tmp_path) == []


def test_put_that_fails_keeps_the_previous_object_intact(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    first = storage.put("jobs/j1/song-1.mp3", [b"complete"], "audio/mpeg")
    with pytest.raises(ConnectionResetError):
        storage.put("jobs/j1/song-1.mp3", _broken(3), "audio/mpeg")
    assert (tmp_path / "jobs/j1/song-1.mp3").read_bytes() == b"complete"
    assert storage.stat("jobs/j1/song-1.mp3").sha256 == first.sha256
    assert _files(tmp_path) == ["jobs/j1/song-1.mp3"]


def test_put_overwrites_atomically(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    storage.put("k.bin", [b"old"], "application/octet-stream")
    new = storage.put("k.bin", [b"new", b"er"], "application/octet-stream")
    assert (tmp_path / "k.bin").read_bytes() == b"newer" and new.size == 5
    assert _files(tmp_path) == ["k.bin"]


@pytest.mark.parametrize("key", ["../escape.mp3", "/abs.mp3", "jobs//x"])
def test_put_refuses_unsafe_keys(tmp_path: Path, key: str) -> None:
    root = tmp_path / "objects"
    root.mkdir()
    with pytest.raises(ValueError):
        FileStorage(root).put(key, [b"x"], "audio/mpeg")
    assert _files(tmp_path) == []


def test_from_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert FileStorage.from_url((tmp_path / "o b").as_uri()).root == (tmp_path / "o b").resolve()
    monkeypatch.chdir(tmp_path)
    assert FileStorage.from_url("file://./var/objects").root == (tmp_path / "var/objects").resolve()


# --- downloader ------------------------------------------------------------------------------

CAP = 1 << 20


@pytest.fixture
def storage(tmp_path: Path) -> FileStorage:
    return FileStorage(tmp_path / "objects")


# The local server runs on 127.0.0.1, which the guard refuses unless private networks are allowed.
LOCAL = UrlPolicy(allow_private=True)


def _download(url: str, storage: FileStorage, kind: str = "audio", max_bytes: int = CAP,
              timeout: float = 5.0):
    key_for = (lambda ext: audio_key("job1", 0)) if kind == "audio" else (lambda ext: cover_key("job1", 0, ext))
    return download_to_storage(url, storage, kind=kind, key_for=key_for, max_bytes=max_bytes,
                               timeout=timeout, chunk_bytes=16 * 1024, policy=LOCAL)


def _stored(storage: FileStorage) -> list[str]:
    return _files(storage.root) if storage.root.exists() else []


def test_download_audio(server: LocalServer, storage: FileStorage) -> None:
    # The double-encoded path of the seeds goes out byte-for-byte.
    path = "/samples/28e06/1/Whispers%2520of%2520the%2520Storm.mp3"
    url = server.route(path, body=MP3_BODY, headers={"Content-Type": "audio/mpeg"})
    stored = _download(url, storage)
    assert server.requests[0][1] == path
    assert (stored.key, stored.content_type) == ("jobs/job1/song-1.mp3", "audio/mpeg")
    assert (stored.size, stored.sha256) == (len(MP3_BODY), hashlib.sha256(MP3_BODY).hexdigest())
    with storage.open(stored.key) as stream:
        assert stream.read() == MP3_BODY
    assert _stored(storage) == ["jobs/job1/song-1.mp3"]


def test_download_audio_trusts_bytes_not_the_content_type(server: LocalServer, storage: FileStorage) -> None:
    url = server.route("/a", body=FRAME * 100, headers={"Content-Type": "application/octet-stream"})
    assert _download(url, storage).content_type == "audio/mpeg"


@pytest.mark.parametrize(("body", "ext", "content_type"), [
    (PNG + b"\x00" * 5000, "png", "image/png"), (JPEG * 100, "jpg", "image/jpeg"), (WEBP * 50, "webp", "image/webp"),
])
def test_download_cover_named_by_its_bytes(server: LocalServer, storage: FileStorage, body: bytes,
                                           ext: str, content_type: str) -> None:
    url = server.route("/public", body=body, headers={"Content-Type": "application/octet-stream"})
    stored = _download(url, storage, kind="image")
    assert (stored.key, stored.content_type) == (f"jobs/job1/song-1-cover.{ext}", content_type)
    assert stored.sha256 == hashlib.sha256(body).hexdigest()


def test_download_gzip_encoded_audio(server: LocalServer, storage: FileStorage) -> None:
    # A CDN may compress on the fly; Content-Length then counts the compressed bytes.
    url = server.route("/gz.mp3", body=gzip.compress(MP3_BODY),
                       headers={"Content-Type": "audio/mpeg", "Content-Encoding": "gzip"})
    stored = _download(url, storage)
    assert (stored.size, stored.sha256) == (len(MP3_BODY), hashlib.sha256(MP3_BODY).hexdigest())


def test_html_200_is_not_audio(server: LocalServer, storage: FileStorage) -> None:
    url = server.route("/None.mp3", body=HTML, headers={"Content-Type": "text/html; charset=utf-8"})
    with pytest.raises(PermanentError) as caught:
        _download(url, storage)
    assert caught.value.code == "download_not_audio"
    assert "text/html" in caught.value.message
    assert _stored(storage) == []


def test_image_url_serving_audio_is_not_an_image(server: LocalServer, storage: FileStorage) -> None:
    url = server.route("/cover", body=MP3_BODY)
    with pytest.raises(PermanentError) as caught:
        _download(url, storage, kind="image")
    assert caught.value.code == "download_not_image"
    assert _stored(storage) == []


def test_empty_200_is_not_audio(server: LocalServer, storage: FileStorage) -> None:
    url = server.route("/empty.mp3", body=b"")
    with pytest.raises(PermanentError) as caught:
        _download(url, storage)
    assert caught.value.code == "download_not_audio"
    assert "empty" in caught.value.message


@pytest.mark.parametrize(("status", "says"), [(403, "signed"), (404, "not found"), (410, "gone"), (401, "refused")])
def test_4xx_is_permanent(server: LocalServer, storage: FileStorage, status: int, says: str) -> None:
    url = server.route("/x.mp3", status=status, body=MP3_BODY)  # an audio body does not rescue a 4xx
    with pytest.raises(PermanentError) as caught:
        _download(url, storage)
    assert caught.value.code == "download_failed"
    assert f"HTTP {status}" in caught.value.message and says in caught.value.message
    assert _stored(storage) == []


@pytest.mark.parametrize("status", [429, 500, 503])
def test_429_and_5xx_are_transient(server: LocalServer, storage: FileStorage, status: int) -> None:
    url = server.route("/x.mp3", status=status, body=b"<html>busy</html>")
    with pytest.raises(TransientError) as caught:
        _download(url, storage)
    assert caught.value.code == "download_unavailable"
    assert _stored(storage) == []


def test_content_length_over_cap(server: LocalServer, storage: FileStorage) -> None:
    url = server.route("/big.mp3", body=MP3_BODY)
    with pytest.raises(PermanentError) as caught:
        _download(url, storage, max_bytes=len(MP3_BODY) - 1)
    assert caught.value.code == "download_too_large"
    assert str(len(MP3_BODY)) in caught.value.message
    assert _stored(storage) == []
    # Exactly the cap is fine.
    assert _download(url, storage, max_bytes=len(MP3_BODY)).size == len(MP3_BODY)


def _no_length(body: bytes):
    def handler(h) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "audio/mpeg")
        h.end_headers()
        h.wfile.write(body)  # HTTP/1.0: the body ends when the connection closes
    return handler


def test_body_over_cap_without_content_length(server: LocalServer, storage: FileStorage) -> None:
    url = server.route("/stream.mp3", handler=_no_length(MP3_BODY))
    with pytest.raises(PermanentError) as caught:
        _download(url, storage, max_bytes=100_000)
    assert caught.value.code == "download_too_large"
    assert _stored(storage) == []


def test_body_without_content_length_is_stored_whole(server: LocalServer, storage: FileStorage) -> None:
    url = server.route("/stream.mp3", handler=_no_length(MP3_BODY))
    assert _download(url, storage).sha256 == hashlib.sha256(MP3_BODY).hexdigest()


def test_truncated_body_is_transient_and_stores_nothing(server: LocalServer, storage: FileStorage) -> None:
    def truncated(h) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(MP3_BODY)))
        h.end_headers()
        h.wfile.write(MP3_BODY[:50_000])  # then the connection closes

    url = server.route("/cut.mp3", handler=truncated)
    with pytest.raises(TransientError) as caught:
        _download(url, storage)
    assert caught.value.code in {"download_interrupted", "download_truncated"}
    assert _stored(storage) == []


def test_truncated_gzip_body_is_transient_and_stores_nothing(server: LocalServer,
                                                            storage: FileStorage) -> None:
    packed = gzip.compress(MP3_BODY)

    def truncated(h) -> None:
        h.send_response(200)
        h.send_header("Content-Encoding", "gzip")
        h.send_header("Content-Length", str(len(packed)))
        h.end_headers()
        h.wfile.write(packed[: len(packed) // 2])

    url = server.route("/cut.mp3", handler=truncated)
    with pytest.raises(TransientError):
        _download(url, storage)
    assert _stored(storage) == []


def test_connection_refused_is_transient(storage: FileStorage) -> None:
    with pytest.raises(TransientError) as caught:
        _download(f"http://127.0.0.1:{closed_port()}/x.mp3", storage)
    assert caught.value.code == "download_interrupted"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.mp3", "/relative/x.mp3", "gopher://x"])
def test_non_http_urls_are_refused(storage: FileStorage, url: str) -> None:
    with pytest.raises(PermanentError) as caught:
        _download(url, storage)
    assert caught.value.code == "download_bad_url"
    assert _stored(storage) == []


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/x.mp3"])
def test_redirect_to_non_http_is_refused(server: LocalServer, storage: FileStorage, target: str) -> None:
    url = server.route("/moved.mp3", status=302, headers={"Location": target})
    with pytest.raises(PermanentError) as caught:
        _download(url, storage)
    assert caught.value.code == "download_bad_url"
    assert _stored(storage) == []


def test_redirect_to_http_is_followed(server: LocalServer, storage: FileStorage) -> None:
    server.route("/real.mp3", body=MP3_BODY)
    url = server.route("/moved.mp3", status=302, headers={"Location": server.url("/real.mp3")})
    assert _download(url, storage).size == len(MP3_BODY)
    assert [r[1] for r in server.requests] == ["/moved.mp3", "/real.mp3"]


def test_allow_list_admits_listed_hosts_and_subdomains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(url_guard, "resolver", lambda host, port: ["142.250.1.1"])
    check_url("http://127.0.0.1/x.mp3", UrlPolicy(frozenset({"127.0.0.1"})))
    check_url("https://storage.googleapis.com/a.mp3", UrlPolicy(frozenset({"googleapis.com"})))
    for url in ("https://evil.example/a.mp3", "https://notgoogleapis.com/a.mp3"):
        with pytest.raises(PermanentError) as caught:
            check_url(url, UrlPolicy(frozenset({"googleapis.com"})))
        assert caught.value.code == "download_host_not_allowed"


def test_redirect_to_a_host_off_the_allow_list_is_never_requested(server: LocalServer,
                                                                 storage: FileStorage) -> None:
    url = server.route("/moved.mp3", status=302, headers={"Location": "http://localhost:9/elsewhere.mp3"})
    with pytest.raises(PermanentError) as caught:
        download_to_storage(url, storage, kind="audio", key_for=lambda ext: f"a.{ext}", max_bytes=10_000_000,
                            timeout=5, chunk_bytes=4096, policy=UrlPolicy(frozenset({"127.0.0.1"})))
    assert caught.value.code == "download_host_not_allowed"
    assert [r[1] for r in server.requests] == ["/moved.mp3"]
    assert _stored(storage) == []
