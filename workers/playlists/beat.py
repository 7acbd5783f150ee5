"""celery beat with scheduled playlists: `celery -A workers.celery_app beat` (make beat).

`PlaylistScheduler` (the app's `beat_scheduler`) is Celery's PersistentScheduler plus:

- at start (and when the folder changes), one entry `playlist:{name}` per definition in SONGQUEUE_PLAYLISTS_DIR that
  has a schedule (a malformed file is logged with its path and key and skipped; the
  others load), and the `songqueue-playlist-sweep` entry (workers/tasks/playlist.py);
- each playlist message carries its *slot*, the scheduled time it is for, computed by
  the beat when it sends. The run task claims (playlist, slot) in Redis, so a slot runs
  once however many messages name it.

`SlotSchedule` is due once per slot: when the latest slot at or before now is later than
the entry's last send. Beat sends at most one message per due entry and tick, and after
being down for several slots it sends one, for the latest. A beat restarted from a schedule
file older than its last send (the file is synced every few minutes, not on every send)
sends the current slot again, and a second beat sends every slot too: the Redis claim
turns those repeats into no-ops. Definitions are read when beat starts and again whenever a
file of the folder changes (mtime or size; looked at every RELOAD_CHECK seconds), so a new,
edited or removed playlist needs no restart (the workers re-read a definition at each run).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from celery.beat import PersistentScheduler, ScheduleEntry
from celery.schedules import BaseSchedule, schedstate

from producer.core import task_names
from producer.core.playlists.definition import PlaylistDefinition, load_folder
from producer.core.playlists.schedule import Cron, Every, Timing, parse_duration
from producer.core.settings import get_settings

log = logging.getLogger("songqueue.playlists")

SWEEP_ENTRY = "songqueue-playlist-sweep"
# How often beat looks at the definitions folder (a stat of each file), seconds.
RELOAD_CHECK = 5.0


class SlotSchedule(BaseSchedule):
    """A playlist's cron (in its time zone) or fixed period, as celery beat asks about it."""

    def __init__(self, cron: str | None, every: str | int | None, timezone: str, nowfun: Any = None,
                 app: Any = None) -> None:
        self.cron, self.every, self.timezone = cron, every, timezone
        super().__init__(nowfun=nowfun, app=app)

    @cached_property
    def timing(self) -> Timing:
        zone = ZoneInfo(self.timezone)
        if self.cron is not None:
            return Cron.parse(self.cron, zone)
        return Every(parse_duration(self.every), zone)  # type: ignore[arg-type]

    def slot(self, now: datetime | None = None) -> datetime | None:
        """The latest scheduled time at or before `now`: what a send now is for."""
        return self.timing.latest(now or self.now())

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        upcoming = self.timing.next_after(self.maybe_make_aware(last_run_at))
        return timedelta.max if upcoming is None else upcoming - self.now()

    def is_due(self, last_run_at: datetime) -> schedstate:
        now = self.now()
        slot = self.slot(now)
        upcoming = self.timing.next_after(now)
        # Beat wakes up to 10 ms early (Scheduler.adjust); never ask for less than that.
        wait = 3600.0 if upcoming is None else max((upcoming - now).total_seconds(), 0.02)
        due = slot is not None and self.maybe_make_aware(last_run_at) < slot
        return schedstate(due, wait)

    def __reduce__(self) -> tuple[type, tuple[str | None, str | int | None, str]]:
        return self.__class__, (self.cron, self.every, self.timezone)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SlotSchedule):
            return (self.cron, self.every, self.timezone) == (other.cron, other.every, other.timezone)
        return NotImplemented

    def __repr__(self) -> str:
        return f"<SlotSchedule: {self.timing.describe()}>"


def playlist_entries(folder: Path) -> dict[str, dict[str, Any]]:
    """beat_schedule entries for every scheduled playlist in `folder`; bad files are logged."""
    definitions, errors = load_folder(folder)
    for error in errors:
        log.error("playlist definition skipped: %s", error)
    entries = {}
    for name, definition in sorted(definitions.items()):
        if definition.timing is None:
            log.info("playlist %s (%s): no schedule; runs only by `songqueue playlist run`", name, definition.source)
            continue
        entries[f"playlist:{name}"] = _entry(definition)
        for warning in definition.warnings:
            log.warning("playlist %s (%s): %s", name, definition.source, warning)
        log.info("playlist %s (%s): %s", name, definition.source, definition.timing.describe())
    return entries


def _entry(definition: PlaylistDefinition) -> dict[str, Any]:
    return {
        "task": task_names.PLAYLIST_RUN,
        "schedule": SlotSchedule(definition.cron, definition.every, definition.timezone),
        "args": (definition.name,),
    }


def folder_state(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a definition is added, edited, renamed or removed."""
    state = []
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else ():
        try:
            stat = path.stat()
        except OSError:  # removed between the listing and the stat: the next look sees it gone
            continue
        state.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(state)


class PlaylistScheduler(PersistentScheduler):
    _folder_state: tuple[tuple[str, int, int], ...] | None = None

    def merge_inplace(self, b: dict[str, Any]) -> None:
        settings = get_settings()
        folder = Path(settings.playlists_dir)
        self._folder_state = folder_state(folder)
        sweep = {SWEEP_ENTRY: {"task": task_names.PLAYLIST_SWEEP, "schedule": settings.watchdog_interval,
                               "options": {"expires": settings.watchdog_interval}}}
        super().merge_inplace({**b, **sweep, **playlist_entries(folder)})

    def reload_if_changed(self) -> bool:
        """Re-read the folder when a file's mtime or size changed (or one came or went).

        Kept entries keep their last send (merge_inplace updates them in place), so an edit
        does not resend the current slot; a new playlist waits for its next slot. Celery's
        tick sees the changed schedule and rebuilds its heap.
        """
        if folder_state(Path(get_settings().playlists_dir)) == self._folder_state:
            return False
        log.info("playlist definitions changed in %s: reloading", get_settings().playlists_dir)
        self.merge_inplace(self.app.conf.beat_schedule)
        return True

    def tick(self, *args: Any, **kwargs: Any) -> float:
        self.reload_if_changed()
        # Wake at least every RELOAD_CHECK seconds, so a change is seen without a restart
        # even when nothing is due for hours.
        return min(float(super().tick(*args, **kwargs)), RELOAD_CHECK)

    def apply_async(self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        if not isinstance(entry.schedule, SlotSchedule):
            return super().apply_async(entry, producer, advance, **kwargs)
        if advance:
            entry = self.reserve(entry)
        slot = entry.schedule.slot()
        if slot is None:
            return None
        # A new entry (built as Celery's own next() builds one, keeping the app): the slot
        # belongs to this one message, not to the entry that is stored.
        sending = entry.__class__(**dict(entry, kwargs={**entry.kwargs, "slot": slot.isoformat()}))
        return super().apply_async(sending, producer, advance=False, **kwargs)
