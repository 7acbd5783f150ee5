"""A definition file explains itself: every problem at once, did-you-mean, the AND of day
fields, the next runs; and cron computed by croniter keeps the documented calendar."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from producer.core.playlists.definition import DefinitionError, load_definition
from producer.core.playlists.schedule import Cron

BERLIN = ZoneInfo("Europe/Berlin")
GOOD = """
cron = "0 6 * * mon-fri"
timezone = "Europe/Berlin"
prompts = ["morning {date} take {index}"]

[request]
seed = 7
"""


def _problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    return caught.value.problems


def test_every_problem_of_a_file_is_reported_at_once_with_did_you_mean(tmp_path: Path) -> None:
    text = ("timezon = 'UTC'\n" + GOOD).replace("{date}", "{dat}").replace("seed = 7", "seed = 7\nsed = 3")
    text = text.replace("0 6 * * mon-fri", "61 6 * * *")
    problems = dict(_problems(tmp_path, text))
    # A bad key, a bad cron (field errors), a bad placeholder and a bad request key
    # (cross-field rules pydantic would only reach once the first two were fixed).
    assert problems["timezon"] == "unknown key (did you mean timezone?)"
    assert "minute field '61'" in problems["cron"]
    assert "unknown placeholder {dat} (did you mean {date}?)" in problems["prompts[0]"]
    assert "did you mean seed?" in problems["request.sed"]
    assert "prompts" not in problems  # not reported missing because another pass left it out


def test_a_wrong_key_far_from_any_known_one_gets_no_guess(tmp_path: Path) -> None:
    assert dict(_problems(tmp_path, "zzzzqqq = 1\n" + GOOD))["zzzzqqq"] == "unknown key"


def test_both_day_fields_keep_celerys_and_and_say_so() -> None:
    cron = Cron.parse("0 6 1 * mon", BERLIN)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Only a 1st that is a Monday (plain cron's OR would give 2 Jan, the first Monday, too).
    assert cron.upcoming(start, 3) == [datetime(2026, 6, 1, 4, 0, tzinfo=UTC), datetime(2027, 2, 1, 5, 0, tzinfo=UTC),
                                       datetime(2027, 3, 1, 5, 0, tzinfo=UTC)]
    warning = cron.both_days_warning()
    assert warning is not None and "only on days that are both day 1 of the month and a mon" in warning
    assert Cron.parse("0 6 1 * *", BERLIN).both_days_warning() is None


def test_daylight_saving_days_keep_the_documented_meaning() -> None:
    night = Cron.parse("30 2 * * *", BERLIN)
    # 29 March 2026: 02:30 does not exist; runs an hour later by the clock (01:30 UTC).
    assert night.next_after(datetime(2026, 3, 28, 12, 0, tzinfo=UTC)) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # 25 October 2026: 02:30 happens twice; runs once, the first time, then the next day.
    first = night.next_after(datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert night.next_after(first) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    assert night.latest(datetime(2026, 10, 25, 1, 45, tzinfo=UTC)) == first


def test_a_rare_day_is_found_and_an_impossible_one_refused() -> None:
    leap_monday = Cron.parse("0 6 29 2 mon", ZoneInfo("UTC"))
    assert leap_monday.next_after(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2044, 2, 29, 6, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="never occurs"):
        Cron.parse("0 6 31 2 *", ZoneInfo("UTC"))


def test_playlist_list_shows_the_next_three_runs_and_the_warning(tmp_path: Path, redis_db_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture) -> None:
    import json

    from producer.cli import main as cli
    from producer.core.settings import get_settings

    defs = tmp_path / "playlists"
    defs.mkdir()
    (defs / "firsts.toml").write_text('cron = "0 6 1 * mon"\nprompts = ["x"]\n', encoding="utf-8")
    (defs / "daily.toml").write_text('cron = "15 7 * * *"\ntimezone = "Europe/Berlin"\nprompts = ["x"]\n',
                                     encoding="utf-8")
    for name, value in {"BROKER_URL": redis_db_url, "REDIS_URL": redis_db_url, "PLAYLISTS_DIR": str(defs)}.items():
        monkeypatch.setenv(f"SONGQUEUE_{name}", value)
    get_settings.cache_clear()
    try:
        assert cli.main(["playlist", "list", "--json"]) == 0
        rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["playlists"]}
        assert cli.main(["playlist", "list"]) == 0
        text = capsys.readouterr().out
    finally:
        get_settings.cache_clear()
    daily = [datetime.fromisoformat(t) for t in rows["daily"]["next_runs"]]
    assert len(daily) == 3 and rows["daily"]["next_run"] == rows["daily"]["next_runs"][0]
    assert all((b.date() - a.date()).days == 1 for a, b in zip(daily, daily[1:]))
    assert {t.strftime("%H:%M") for t in daily} == {"07:15"}
    assert rows["daily"]["warnings"] == []
    firsts = [datetime.fromisoformat(t) for t in rows["firsts"]["next_runs"]]
    assert len(firsts) == 3 and all(t.day == 1 and t.weekday() == 0 for t in firsts)
    assert "day 1 of the month and a mon" in rows["firsts"]["warnings"][0]
    assert f"next: {', '.join(rows['daily']['next_runs'])}" in text and "warning: cron '0 6 1 * mon'" in text
