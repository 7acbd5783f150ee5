"""One pass over a song's bytes (workers.artifacts.mp3): the tag written before the
audio, both checksums computed on the way and equal to a second, separate reading; the
upstream's own tags merged or cut; the frame-header check on the result. Real MP3s (the
sandbox's LAME encoder), real files."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mutagen.id3 import ID3, TCOM, TIT2

from sandbox.audio import large_mp3, song_mp3
from workers.artifacts import downloader, mp3
from workers.artifacts.downloader import spool_path
from workers.artifacts.mp3 import MAX_UPSTREAM_TAG, SongTags, check_mp3, write_tagged_mp3
from workers.storage.file import FileStorage
from workers.upstream.errors import PermanentError

TAGS = SongTags(title="晨光", artist="songqueue (udio udio32-v1.5)", album="songqueue job j1", track=1,
                track_total=2, job_id="j1", upstream_song_id="s-1", upstream_task_id="t-1", lyrics="la la")


@pytest.fixture(scope="module")
def audio() -> bytes:
    return song_mp3(3.0, 1)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def _write(tmp_path: Path, served: bytes, chunk: int = 4096) -> tuple[mp3.TaggedMp3, bytes]:
    path = tmp_path / "song.mp3"
    with open(path, "wb") as out:
        written = write_tagged_mp3(_chunks(served, chunk), out, TAGS)
    return written, path.read_bytes()


def _id3v2(title: str, composer: str = "") -> bytes:
    """An upstream's ID3v2.3 tag, as bytes."""
    tag = ID3()
    tag.add(TIT2(encoding=3, text=title))
    if composer:
        tag.add(TCOM(encoding=3, text=composer))
    out = io.BytesIO()
    tag.save(out, v2_version=3, padding=lambda info: 0)
    return out.getvalue()


# Chunk sizes around the held-back tail (133 bytes) and the ID3 header (10): a byte at a
# time, smaller and larger than each, and the whole file at once.
@pytest.mark.parametrize("chunk", [1, 7, 132, 133, 134, 4096, 1 << 20])
def test_both_checksums_equal_a_second_reading_of_the_bytes(tmp_path: Path, audio: bytes, chunk: int) -> None:
    written, stored = _write(tmp_path, audio, chunk)

    assert stored.startswith(b"ID3\x04") and stored.endswith(audio)  # our tag, then the audio untouched
    assert (written.size, written.sha256) == (len(stored), _sha(stored))
    assert (written.upstream_size, written.upstream_sha256) == (len(audio), _sha(audio))
    assert str(ID3(tmp_path / "song.mp3")["TIT2"]) == "晨光"
    assert check_mp3(tmp_path / "song.mp3", 3.0, 0.1) == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize("chunk", [1, 5, 9, 10, 11, 4096])
def test_the_upstream_id3v2_tag_is_merged_and_not_kept_twice(tmp_path: Path, audio: bytes, chunk: int) -> None:
    served = _id3v2(title="upstream title", composer="upstream composer") + audio

    written, stored = _write(tmp_path, served, chunk)

    tags = ID3(tmp_path / "song.mp3")
    assert str(tags["TIT2"]) == "晨光" and str(tags["TCOM"]) == "upstream composer"
    assert stored.endswith(audio) and stored.count(b"upstream title") == 0
    assert stored.find(audio) == len(stored) - len(audio)  # one tag, ours, then the frames
    assert (written.size, written.sha256) == (len(stored), _sha(stored))
    assert (written.upstream_size, written.upstream_sha256) == (len(served), _sha(served))


@pytest.mark.parametrize("chunk", [1, 100, 4096])
def test_an_id3v1_tag_is_cut_off_the_end_and_out_of_the_checksum(tmp_path: Path, audio: bytes, chunk: int) -> None:
    v1 = b"TAG" + b"upstream v1 title".ljust(30, b"\0") + b"\0" * 95
    served = audio + v1

    written, stored = _write(tmp_path, served, chunk)

    assert stored.endswith(audio) and not stored.endswith(v1)
    assert (written.size, written.sha256) == (len(stored), _sha(stored))
    assert written.upstream_sha256 == _sha(served)


def test_an_apev2_footer_is_not_taken_for_id3v1(tmp_path: Path, audio: bytes) -> None:
    # "APETAGEX" puts "TAG" 5 bytes in: 128 bytes from the end it is APE's, not ID3v1's.
    ape = b"APETAGEX" + b"\x01" * 120
    _, stored = _write(tmp_path, audio + ape)
    assert stored.endswith(audio + ape)


@pytest.mark.parametrize(("served", "code", "says"), [
    (b"ID3\x04\x00\x00\x00\x00\x02\x00" + b"\x00" * 50, "download_not_audio", "ends inside its ID3 tag"),
    (b"ID3\x09\x00\x00\x00\x00\x00\x10" + b"\xff\xfb" * 100, "download_not_audio", "malformed ID3 tag header"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x80" + b"\xff\xfb" * 100, "download_not_audio", "malformed ID3 tag header"),
    (b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + b"\x00" * 100, "download_too_large", f"{MAX_UPSTREAM_TAG // 2**20} MiB"),
], ids=["truncated-tag", "bad-version", "not-syncsafe", "huge-tag"])
def test_a_broken_upstream_tag_is_refused_with_the_reason(tmp_path: Path, served: bytes, code: str,
                                                          says: str) -> None:
    with pytest.raises(PermanentError) as caught:
        _write(tmp_path, served, 7)
    assert caught.value.code == code and says in caught.value.message


def test_a_tag_alone_is_not_audio(tmp_path: Path) -> None:
    _write(tmp_path, _id3v2(title="only a tag"))
    with pytest.raises(PermanentError) as caught:
        check_mp3(tmp_path / "song.mp3", None, 1.0)
    assert caught.value.code == "download_not_audio"


def test_file_storage_links_the_spool_file_with_the_known_checksum(tmp_path: Path, audio: bytes) -> None:
    storage = FileStorage(tmp_path / "objects")
    with spool_path(str(tmp_path / "spool"), "audio") as path:
        with open(path, "wb") as out:
            written = write_tagged_mp3(_chunks(audio, 1000), out, TAGS)
        stored = storage.put_file("jobs/j1/song-1.mp3", path, "audio/mpeg",
                                  upstream_sha256=written.upstream_sha256, sha256=written.sha256)
        final = tmp_path / "objects" / "jobs" / "j1" / "song-1.mp3"
        assert os.stat(final).st_ino == os.stat(path).st_ino  # same filesystem: linked, no byte copied
    assert not path.exists() and final.is_file()  # the spool name is gone, the object stays
    assert (stored.size, stored.sha256) == (final.stat().st_size, _sha(final.read_bytes()))
    assert stored.upstream_sha256 == _sha(audio)
    assert final.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in final.parent.iterdir()] == ["song-1.mp3"]  # no temporary name left
    assert storage.stat("jobs/j1/song-1.mp3").sha256 == stored.sha256


def test_file_storage_copies_across_filesystems(tmp_path: Path, audio: bytes) -> None:
    other = Path("/dev/shm")
    if not other.is_dir() or os.stat(other).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem to spool on")
    storage = FileStorage(tmp_path / "objects")
    with spool_path(str(other), "audio") as path:
        path.write_bytes(audio)
        stored = storage.put_file("jobs/j1/song-1.mp3", path, "audio/mpeg")
        final = tmp_path / "objects" / "jobs" / "j1" / "song-1.mp3"
        assert os.stat(final).st_ino != os.stat(path).st_ino
    assert final.read_bytes() == audio and stored.sha256 == _sha(audio)


def test_spool_files_are_deleted_whatever_happens(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    with pytest.raises(RuntimeError), spool_path(str(folder), "audio") as path:
        path.write_bytes(b"x")
        raise RuntimeError("a download broke")
    assert list(folder.iterdir()) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask



def test_a_large_song_starts_its_writeback_on_the_way_and_stays_whole(tmp_path: Path) -> None:
    # 20 MiB: past downloader.EVERY_BYTES twice, so the disk is asked to start mid-pass.
    big = large_mp3(20, 1)
    path = tmp_path / "song.mp3"
    with open(path, "wb") as out:
        written = write_tagged_mp3(big.chunks(), out, TAGS)
    assert big.size > 2 * downloader.EVERY_BYTES
    stored = path.read_bytes()
    assert (written.size, written.sha256) == (len(stored), _sha(stored))
    assert written.upstream_sha256 == _sha(b"".join(big.chunks()))
    assert check_mp3(path, big.duration, 0.1) == pytest.approx(big.duration, abs=0.1)
    if sys.platform == "linux":
        assert downloader._sync_file_range is not None  # the hint is really given here


def _helpers() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "songqueue-served-sha256"]


@pytest.mark.parametrize("upstream_tag", [False, True])
def test_past_the_threshold_the_served_digest_is_hashed_on_a_helper_and_is_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream_tag: bool) -> None:
    # A helper thread hashes the bytes as served once THREAD_AFTER_BYTES have come; the
    # threshold is lowered so a 3 s song crosses it after a few 4 KiB chunks.
    monkeypatch.setattr(mp3, "THREAD_AFTER_BYTES", 8 * 1024)
    started: list[str] = []
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    served = (_id3v2("upstream title") if upstream_tag else b"") + song_mp3(3.0, 1)
    assert len(served) > 4 * mp3.THREAD_AFTER_BYTES
    written, stored = _write(tmp_path, served)
    assert started == ["songqueue-served-sha256"]
    assert written.upstream_sha256 == _sha(served) and written.upstream_size == len(served)
    assert (written.size, written.sha256) == (len(stored), _sha(stored))
    assert _helpers() == []


def test_a_body_that_breaks_after_the_helper_started_leaves_no_thread_behind(
        tmp_path: Path, audio: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mp3, "THREAD_AFTER_BYTES", 8 * 1024)

    def breaking() -> Iterator[bytes]:
        yield from _chunks(audio[:64 * 1024], 4096)
        assert _helpers() == ["songqueue-served-sha256"]  # the helper is really running
        raise PermanentError("download_interrupted", "the connection broke")

    with open(tmp_path / "song.mp3", "wb") as out, pytest.raises(PermanentError, match="broke"):
        write_tagged_mp3(breaking(), out, TAGS)
    assert _helpers() == []
