"""A download reports liveness by the clock while bytes arrive, and has a deadline of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from producer.core.url_guard import UrlPolicy
from sandbox import audio
from tests.support.http_fixture import LocalServer
from workers.artifacts import downloader
from workers.upstream.errors import TransientError

SONG = audio.song_mp3(3.0, 0)
POLICY = UrlPolicy(allow_private=True)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as local:
        yield local


def _slow(data: bytes, piece: int, gap: float, stop: threading.Event) -> Any:
    """The file `piece` bytes at a time, `gap` seconds apart (a slow but moving CDN)."""
    def handler(h: Any) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "audio/mpeg")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        try:
            for at in range(0, len(data), piece):
                h.wfile.write(data[at:at + piece])
                h.wfile.flush()
                if stop.wait(gap):
                    return
        except OSError:
            pass  # the client hung up (the deadline)
    return handler


def test_the_heartbeat_beats_by_the_clock_while_a_chunk_fills(server: LocalServer, monkeypatch) -> None:
    """The whole file is less than one chunk and takes ~2 s: a heartbeat between chunks would
    never beat; one by the clock beats several times."""
    monkeypatch.setattr(downloader, "HEARTBEAT_SECONDS", 0.2)
    stop = threading.Event()
    url = server.route("/song.mp3", handler=_slow(SONG, max(1, len(SONG) // 20), 0.1, stop))
    beats: list[int] = []
    try:
        with downloader.open_download(url, kind="audio", max_bytes=1 << 24, timeout=5, chunk_bytes=1 << 20,
                                      heartbeat=lambda: beats.append(1), policy=POLICY) as body:
            data = b"".join(body.chunks)
    finally:
        stop.set()
    assert data == SONG
    assert len(beats) >= 3


def test_a_download_past_its_deadline_is_transient(server: LocalServer) -> None:
    """Bytes keep arriving (no read timeout trips), but the download's own deadline ends it."""
    stop = threading.Event()
    url = server.route("/song.mp3", handler=_slow(SONG, 64, 0.2, stop))
    try:
        with pytest.raises(TransientError) as caught, downloader.open_download(
                url, kind="audio", max_bytes=1 << 24, timeout=5, chunk_bytes=1 << 20, policy=POLICY,
                deadline=1.0) as body:
            b"".join(body.chunks)
    finally:
        stop.set()
    assert caught.value.code == "download_deadline"
