"""Typed provider settings: `settings.provider(name)`, read from the same SONGQUEUE_{NAME}_* variables."""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import pytest

from producer.core.models.providers import PROVIDERS, UnknownProvider
from producer.core.provider_settings import (
    PROVIDER_SETTINGS,
    BatchPolledProviderSettings,
    MiniMaxSettings,
    PolledProviderSettings,
    ProviderSettings,
    SunoSettings,
    UdioSettings,
    flat_fields,
)
from producer.core.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def test_every_provider_of_the_registry_has_typed_settings_of_its_kind() -> None:
    assert set(PROVIDER_SETTINGS) == set(PROVIDERS)
    settings = Settings(_env_file=None)
    for name, spec in PROVIDERS.items():
        own = settings.provider(name)
        assert isinstance(own, ProviderSettings) and own.name == name
        assert isinstance(own, PolledProviderSettings) == spec.polled
    assert isinstance(settings.provider("udio"), UdioSettings)
    assert isinstance(settings.provider("minimax"), MiniMaxSettings)
    assert isinstance(settings.provider("suno"), SunoSettings)
    assert isinstance(settings.provider("suno"), BatchPolledProviderSettings)


def test_the_flat_provider_fields_are_exactly_the_typed_ones() -> None:
    for name in PROVIDERS:
        flat = {field for field in Settings.model_fields if field.startswith(f"{name}_")}
        assert flat == set(flat_fields(name).values()), name


def test_an_unknown_provider_is_named_with_the_known_ones() -> None:
    with pytest.raises(UnknownProvider, match=r"unknown provider 'sunno'; known: minimax, suno, udio"):
        Settings(_env_file=None).provider("sunno")


def test_the_environment_names_stay_as_they_were(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SONGQUEUE_SUNO_DAILY_BUDGET", "5")
    monkeypatch.setenv("SONGQUEUE_SUNO_PRICE_PER_CALL", "0.25")
    monkeypatch.setenv("SONGQUEUE_UDIO_POLL_MIN_INTERVAL", "3")
    monkeypatch.setenv("songqueue_minimax_max_in_flight", "2")  # any case, as before
    monkeypatch.setenv("SONGQUEUE_UDIO_SUBMIT_RATE", "")  # empty: unlimited
    env_file = tmp_path / ".env"
    env_file.write_text("SONGQUEUE_SUNO_API_KEY=from-the-file\nSONGQUEUE_UDIO_NOTIFY_FIELD=hook\n")
    settings = Settings(_env_file=env_file)
    suno, udio, minimax = settings.provider("suno"), settings.provider("udio"), settings.provider("minimax")
    assert (suno.daily_budget, suno.price_per_call) == (5, 0.25)
    assert suno.api_key.get_secret_value() == "from-the-file"
    assert udio.notify_field == "hook" and udio.poll_min_interval == 3 and udio.submit_rate is None
    assert minimax.max_in_flight == 2
    assert settings.suno_daily_budget == 5  # the flat attribute still reads the same value
    assert suno.env("daily_budget") == "SONGQUEUE_SUNO_DAILY_BUDGET"


def test_call_rates_and_poll_schedules_by_kind_of_provider() -> None:
    settings = Settings(_env_file=None, udio_poll_rate=2, minimax_submit_rate=0.5, suno_poll_max_interval=60,
                        poll_max_interval=20)
    assert settings.provider("udio").call_rate("poll") == 2
    assert settings.provider("minimax").call_rate("submit") == 0.5
    assert settings.provider("minimax").call_rate("poll") is None  # answers in one call: never polled
    assert settings.poll_schedule("suno") == (5, 2, 60)
    assert settings.poll_schedule("minimax") == (5, 2, 20)


@pytest.mark.parametrize("name", [name for name, spec in PROVIDERS.items() if not spec.polled])
def test_a_provider_answering_in_one_call_fits_its_deadline_in_a_task(name: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=f"{name}_deadline must be shorter than task_time_limit"):
        Settings(_env_file=None, task_time_limit=300, **{f"{name}_deadline": 280})


def _python_sources() -> list[Path]:
    return sorted(p for top in ("producer", "workers") for p in (ROOT / top).rglob("*.py"))


def test_no_setting_is_read_by_a_name_built_at_run_time() -> None:
    # getattr(settings, f"{provider}_...") hid typos and missed providers; settings.provider(name) is typed.
    built = re.compile(r"getattr\(\s*[\w.]+\s*,\s*f[\"']")
    found = [f"{path.relative_to(ROOT)}:{n}" for path in _python_sources()
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if built.search(line)]
    assert not found, found


def test_provider_settings_are_read_typed_outside_the_settings_module() -> None:
    flat = re.compile(r"\bsettings\.(?:" + "|".join(PROVIDERS) + r")_\w+")
    found = [f"{path.relative_to(ROOT)}:{n}" for path in _python_sources()
             if path.name != "settings.py"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if flat.search(line)]
    assert not found, found
