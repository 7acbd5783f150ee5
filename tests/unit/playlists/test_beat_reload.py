"""Beat re-reads the definitions folder when a file changes: no restart to add, edit or drop a playlist."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from producer.core.settings import get_settings
from workers.celery_app import app
from workers.playlists.beat import SWEEP_ENTRY, PlaylistScheduler, SlotSchedule

MORNING = 'cron = "0 6 * * *"\nprompts = ["morning {date}"]\n'


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    defs = tmp_path / "playlists"
    defs.mkdir()
    monkeypatch.setenv("SONGQUEUE_PLAYLISTS_DIR", str(defs))
    get_settings.cache_clear()
    yield defs
    get_settings.cache_clear()


def _touch_later(path: Path, text: str) -> None:
    # A distinct mtime even on a coarse-grained file system: the change is what is detected.
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def test_added_edited_and_removed_definitions_reach_the_running_scheduler(folder: Path, tmp_path: Path) -> None:
    scheduler = PlaylistScheduler(app=app, schedule_filename=str(tmp_path / "beat-schedule"))
    try:
        assert set(scheduler.schedule) >= {SWEEP_ENTRY} and "playlist:morning" not in scheduler.schedule
        assert scheduler.reload_if_changed() is False  # nothing changed: no re-read

        _touch_later(folder / "morning.toml", MORNING)
        assert scheduler.reload_if_changed() is True
        entry = scheduler.schedule["playlist:morning"]
        assert entry.schedule == SlotSchedule("0 6 * * *", None, "UTC")
        sent_at = entry.last_run_at

        _touch_later(folder / "morning.toml", MORNING.replace("0 6", "30 7"))
        assert scheduler.reload_if_changed() is True
        edited = scheduler.schedule["playlist:morning"]
        assert edited.schedule == SlotSchedule("30 7 * * *", None, "UTC")
        assert edited.last_run_at == sent_at  # an edit does not resend the current slot

        (folder / "morning.toml").unlink()
        assert scheduler.reload_if_changed() is True
        assert "playlist:morning" not in scheduler.schedule and SWEEP_ENTRY in scheduler.schedule
    finally:
        scheduler.close()
