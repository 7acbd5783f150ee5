"""A put cut off by SIGKILL leaves its temp file; once the job is complete, it goes."""

from __future__ import annotations

from workers.storage.file import FileStorage


def test_half_written_files_of_a_job_folder_are_discarded(tmp_path) -> None:
    storage = FileStorage(tmp_path)
    stored = storage.put("jobs/j1/song-1.mp3", [b"abc"], "audio/mpeg")
    folder = tmp_path / "jobs" / "j1"
    (folder / ".song-2-cover.png.0123abcd.part").write_bytes(b"half")  # what a killed put leaves
    (tmp_path / "jobs" / "j2").mkdir()
    other = tmp_path / "jobs" / "j2" / ".song-1.mp3.feed.part"
    other.write_bytes(b"another job's")

    assert storage.discard_partials("jobs/j1") == 1
    assert sorted(p.name for p in folder.iterdir()) == ["song-1.mp3"]
    assert other.exists()  # only the folder asked for
    assert storage.stat("jobs/j1/song-1.mp3").sha256 == stored.sha256
    assert storage.discard_partials("jobs/j1") == 0
