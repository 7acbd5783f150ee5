"""Control characters refused in input, stripped from upstream text we print or send on."""

from __future__ import annotations

import pydantic
import pytest

from producer.core.models.job_record import MAX_ERROR_CHARS, JobError
from producer.core.models.providers import PROVIDERS
from producer.core.models.text_rules import check_label, clean_text, control_rule
from producer.core.settings import Settings


@pytest.mark.parametrize("text", ["a\x00", "\x1b[2J", "x\u202e", "\u2067", "\x85", "\x7f", "\r"])
def test_controls_are_named(text):
    assert "control characters other than newline and tab" in (control_rule(text) or "")


@pytest.mark.parametrize("text", ["line\nnext\tcol", "雨の歌 🎵", "café", ""])
def test_ordinary_text_passes(text):
    assert control_rule(text) is None


def test_clean_text_strips_escapes_and_bounds():
    hostile = "\x1b[31mred\x1b[0m \x1b]0;owned\x07title\u202e\x00\n\tnext " + "x" * 500
    cleaned = clean_text(hostile, 100)
    assert cleaned.startswith("red title next ") and len(cleaned) == 100 and cleaned.endswith("…")
    assert all(c.isprintable() for c in cleaned)


def test_job_error_is_cleaned_whatever_wrote_it():
    error = JobError(code="upstream\x1b[1m_rejected", message="\x1b[2Jwiped " + "y" * 2000)
    assert error.code == "upstream_rejected" and error.message.startswith("wiped ")
    assert len(error.message) == MAX_ERROR_CHARS


def test_labels_are_bounded_and_printable():
    check_label("album", "Morning Mix 晨光", 200)
    for value, rule in [("a" * 201, "at most 200"), (" ", "blank"), ("a\nb", "one line"), ("\x00", "control")]:
        with pytest.raises(ValueError, match=f"^album: .*{rule}"):
            check_label("album", value, 200)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_budget_without_a_price_is_refused_at_start_up(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every provider of the registry, Suno included (the rule once looped over udio and minimax only).
    name = provider.upper()
    monkeypatch.setenv(f"SONGQUEUE_{name}_DAILY_BUDGET", "5")
    monkeypatch.setenv(f"SONGQUEUE_{name}_PRICE_PER_CALL", "0")
    with pytest.raises(pydantic.ValidationError,
                       match=f"{provider}_daily_budget: needs SONGQUEUE_{name}_PRICE_PER_CALL > 0"):
        Settings(_env_file=None)
    with pytest.raises(pydantic.ValidationError, match=f"{provider}_daily_budget"):
        Settings(_env_file=None, **{f"{provider}_daily_budget": 0})
    monkeypatch.setenv(f"SONGQUEUE_{name}_PRICE_PER_CALL", "0.05")
    assert Settings(_env_file=None).provider(provider).daily_budget == 5
