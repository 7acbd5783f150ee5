"""When a playlist runs: a cron expression in a time zone, or a fixed period (for tests).

Both answer the same two questions, so the beat (which fires), the run task (which names
the slot it claims) and `playlist list` (next run) agree on one calendar:

- `latest(now)`: the most recent scheduled time at or before `now` — the *slot* a run
  belongs to. Exactly one run is made per (playlist, slot).
- `next_after(now)`: the first scheduled time after `now`.

Cron fields are checked by Celery's own crontab parser (messages that name the field) and
computed by croniter with Celery's crontab meaning: a day must match day-of-month AND
month AND day-of-week (croniter's `day_or=False`; plain cron ORs the two day fields). Wall-clock times are in
the playlist's time zone; a time that does not exist on a spring-forward day runs at the
same offset an hour later, an ambiguous one on a fall-back day runs once, the first time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from celery.schedules import crontab
from croniter import CroniterBadDateError, croniter

# A day-of-week/day-of-month combination can be rare (29 Feb on a Monday: every 28 years).
_MAX_YEARS = 29
# A daylight-saving shift moves a wall-clock time by at most this much: the search starts
# this far on the other side of now, so no slot near a shift is missed.
_DST_MARGIN = timedelta(hours=2)
_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | int) -> int:
    """Seconds in "90", "90s", "5m", "2h", "1d" (or an int of seconds)."""
    if isinstance(value, bool):
        raise ValueError("a duration like 30s, 5m, 2h or 1d")
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration like 30s, 5m, 2h or 1d")
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("must be at least 1 second")
    return seconds


@dataclass(frozen=True)
class Cron:
    expression: str
    tz: ZoneInfo

    @classmethod
    def parse(cls, expression: str, tz: ZoneInfo) -> Cron:
        """Raises ValueError naming the field that is wrong."""
        parts = expression.split()
        if len(parts) != 5:
            raise ValueError(f"needs 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
        # Celery's parser, field by field, for messages that name the field; croniter computes.
        for field, label, spec in zip(_FIELDS, _FIELD_NAMES, parts):
            try:
                crontab(**{field: spec})
            except Exception as exc:  # noqa: BLE001 - the parser raises ValueError and its own ParseException
                raise ValueError(f"{label} field {spec!r}: {exc}") from None
        try:  # the combination, e.g. 31 February
            crontab(*(parts[i] for i in (0, 1, 4, 2, 3)))
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        if not croniter.is_valid(expression):
            raise ValueError(f"{expression!r} is not a cron expression")
        cron = cls(expression, tz)
        if cron.next_after(datetime.now(UTC)) is None:
            raise ValueError("never fires (no matching day in the coming years)")
        return cron

    def _iter(self, local_wall_clock: datetime) -> croniter:
        # Naive wall-clock times, each placed in the zone by _at: croniter's own handling of
        # aware times moves a skipped 02:30 to 03:00 and runs a repeated one twice; ours is
        # the documented one (an hour later; once). day_or=False: day-of-month AND day-of-week.
        return croniter(self.expression, local_wall_clock, day_or=False, max_years_between_matches=_MAX_YEARS)

    def _at(self, wall_clock: datetime) -> datetime:
        return wall_clock.replace(tzinfo=self.tz).astimezone(UTC)

    def latest(self, now: datetime) -> datetime | None:
        now = now.astimezone(UTC)
        local = now.astimezone(self.tz).replace(tzinfo=None, second=0, microsecond=0)
        times = self._iter(local + _DST_MARGIN + timedelta(minutes=1))
        try:
            while (at := self._at(times.get_prev(datetime))) > now:
                pass
        except CroniterBadDateError:
            return None
        return at

    def next_after(self, now: datetime) -> datetime | None:
        now = now.astimezone(UTC)
        times = self._iter(now.astimezone(self.tz).replace(tzinfo=None) - _DST_MARGIN)
        try:
            while (at := self._at(times.get_next(datetime))) <= now:
                pass
        except CroniterBadDateError:
            return None
        return at

    def upcoming(self, now: datetime, count: int) -> list[datetime]:
        """The next `count` scheduled times after `now` (fewer if it stops firing)."""
        found: list[datetime] = []
        while len(found) < count and (at := self.next_after(found[-1] if found else now)) is not None:
            found.append(at)
        return found

    def restricts_both_days(self) -> bool:
        """Both day fields restricted: cron's usual OR would differ from the AND used here."""
        parts = self.expression.split()
        return parts[2] != "*" and parts[4] != "*"

    def both_days_warning(self) -> str | None:
        """What a day-of-month plus day-of-week expression means here, for the operator."""
        if not self.restricts_both_days():
            return None
        parts = self.expression.split()
        dates = ", ".join(at.astimezone(self.tz).strftime("%a %Y-%m-%d") for at in self.upcoming(datetime.now(UTC), 3))
        return (f"cron {self.expression!r} restricts both day-of-month and day-of-week: it runs only on days that "
                f"are both day {parts[2]} of the month and a {parts[4]} (plain cron would run on either); "
                f"next such days: {dates}")

    def describe(self) -> str:
        return f"cron {self.expression!r} ({self.tz.key})"


@dataclass(frozen=True)
class Every:
    """A fixed period, aligned to the Unix epoch so every beat computes the same slots."""

    seconds: int
    tz: ZoneInfo

    def latest(self, now: datetime) -> datetime:
        stamp = now.timestamp()
        return datetime.fromtimestamp(stamp - stamp % self.seconds, UTC)

    def next_after(self, now: datetime) -> datetime:
        return self.latest(now) + timedelta(seconds=self.seconds)

    def describe(self) -> str:
        return f"every {self.seconds}s"


Timing = Cron | Every
