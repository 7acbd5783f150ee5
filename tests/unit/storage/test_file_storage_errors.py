"""Filesystem errors of the file store, sorted into transient (retried) and permanent (FAILED)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import requests

from workers.storage import file as file_storage
from workers.storage.file import FileStorage
from workers.upstream.errors import PermanentError, TransientError


def _fail_with(code: int):
    def fail(*_: object) -> None:
        raise OSError(code, "injected")
    return fail


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EIO])
def test_disk_full_and_io_errors_are_transient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    monkeypatch.setattr(file_storage.os, "fsync", _fail_with(code))
    with pytest.raises(TransientError) as caught:
        FileStorage(tmp_path).put("jobs/j1/song-1.mp3", [b"abc"], "audio/mpeg")
    assert caught.value.code == "storage_unavailable"
    assert "jobs/j1/song-1.mp3" in caught.value.message and errno.errorcode[code] in caught.value.message
    assert list(tmp_path.rglob("*")) == [tmp_path / "jobs", tmp_path / "jobs" / "j1"]  # no partial object left


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS, errno.ENAMETOOLONG])
def test_refusals_are_permanent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    monkeypatch.setattr(file_storage.os, "replace", _fail_with(code))
    with pytest.raises(PermanentError) as caught:
        FileStorage(tmp_path).put("jobs/j1/manifest.json", [b"{}"], "application/json")
    assert caught.value.code == "storage_refused" and errno.errorcode[code] in caught.value.message


def test_a_download_error_in_the_chunks_is_not_the_store_s(tmp_path: Path) -> None:
    def chunks():
        yield b"abc"
        raise requests.ConnectionError("reset by peer")

    with pytest.raises(requests.ConnectionError):
        FileStorage(tmp_path).put("jobs/j1/song-1.mp3", chunks(), "audio/mpeg")
