"""When a playlist runs: a cron expression in a time zone, or a fixed period (for tests).

Both answer the same two questions, so the beat (which fires), the run task (which names
the slot it claims) and `playlist list` (next run) agree on one calendar:

- `latest(now)`: the most recent scheduled time at or before `now` — the *slot* a run
  belongs to. Exactly one run is made per (playlist, slot).
- `next_after(now)`: the first scheduled time after `now`.

Cron fields are parsed by Celery's own crontab parser and matched as Celery's crontab
does: a day must match day-of-month AND month AND day-of-week. Wall-clock times are in
the playlist's time zone; a time that does not exist on a spring-forward day runs at the
same offset an hour later, an ambiguous one on a fall-back day runs once, the first time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from celery.schedules import crontab

# A day-of-week/day-of-month combination can be rare (29 Feb on a Monday: every 28 years).
_SEARCH_DAYS = 366 * 29
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
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday, as in cron

    @classmethod
    def parse(cls, expression: str, tz: ZoneInfo) -> Cron:
        """Raises ValueError naming the field that is wrong."""
        parts = expression.split()
        if len(parts) != 5:
            raise ValueError(f"needs 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
        sets = {}
        for field, label, spec in zip(_FIELDS, _FIELD_NAMES, parts):
            try:
                sets[field] = getattr(crontab(**{field: spec}), field)
            except Exception as exc:  # noqa: BLE001 - the parser raises ValueError and its own ParseException
                raise ValueError(f"{label} field {spec!r}: {exc}") from None
        try:  # the combination, e.g. 31 February
            crontab(*(parts[i] for i in (0, 1, 4, 2, 3)))
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        cron = cls(expression, tz, tuple(sorted(sets["minute"])), tuple(sorted(sets["hour"])),
                   frozenset(sets["day_of_month"]), frozenset(sets["month_of_year"]), frozenset(sets["day_of_week"]))
        if cron.next_after(datetime.now(UTC)) is None:
            raise ValueError("never fires (no matching day in the next 29 years)")
        return cron

    def _day_matches(self, day: date) -> bool:
        return (day.month in self.months and day.day in self.days_of_month
                and day.isoweekday() % 7 in self.days_of_week)

    def _at(self, day: date, hour: int, minute: int) -> datetime:
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.tz)
        return local.astimezone(UTC)

    def latest(self, now: datetime) -> datetime | None:
        # Compared in UTC: aware datetimes sharing one tzinfo compare by wall clock.
        now = now.astimezone(UTC)
        today = now.astimezone(self.tz).date()
        for back in range(_SEARCH_DAYS):
            day = today - timedelta(days=back)
            if not self._day_matches(day):
                continue
            for hour in reversed(self.hours):
                for minute in reversed(self.minutes):
                    at = self._at(day, hour, minute)
                    if at <= now:
                        return at
        return None

    def next_after(self, now: datetime) -> datetime | None:
        now = now.astimezone(UTC)
        today = now.astimezone(self.tz).date()
        for ahead in range(-1, _SEARCH_DAYS):  # from yesterday: a DST shift can move a local day
            day = today + timedelta(days=ahead)
            if not self._day_matches(day):
                continue
            for hour in self.hours:
                for minute in self.minutes:
                    at = self._at(day, hour, minute)
                    if at > now:
                        return at
        return None

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
