"""docs/configuration.md is generated from the settings, and the docs name only real settings."""

from __future__ import annotations

import re
from pathlib import Path

from producer.core import settings_doc
from producer.core.models.providers import PROVIDERS
from producer.core.settings import GROUPS, Settings

ROOT = Path(__file__).resolve().parents[3]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

# SONGQUEUE_* names the docs may show that are not settings, each for its reason.
NOT_SETTINGS = {
    "SONGQUEUE_SANDBOX_API_KEY",  # read by `songqueue sandbox`, not by Settings
    "SONGQUEUE_TEST_AMQP_URL",  # read by the tests: run the integration tests on RabbitMQ
    "SONGQUEUE_FAULT_POINT",  # read by workers/fault_points.py in the fault tests, never a setting
    "SONGQUEUE_TEST_FAULTS",  # the switch a crash point needs beside it (workers/fault_points.py)
    "SONGQUEUE_BROKR_URL",  # docs/cli.md: the misspelt name of its did-you-mean example
    "SONGQUEUE_KEY",  # docs/http-api.md: an environment variable of the TypeScript client example
    "SONGQUEUE_NAME",  # docs/configuration.md: the placeholder of `SONGQUEUE_NAME: rule` error lines
}
# SONGQUEUE_{NAME}_X, SONGQUEUE_{PROVIDER}_X, SONGQUEUE_*_X: the setting X of some provider.
_TEMPLATE = re.compile(r"SONGQUEUE_(?:\{NAME\}|\{PROVIDER\}|\*)_([A-Z0-9_]+)")
_NAME = re.compile(r"SONGQUEUE_[A-Z0-9_]*")


def test_the_configuration_page_is_what_the_generator_renders() -> None:
    page = settings_doc.PAGE.read_text(encoding="utf-8")
    assert settings_doc.updated(page) == page, "docs/configuration.md is stale: run python -m producer.core.settings_doc"


def test_the_page_has_every_setting_once_in_its_group() -> None:
    rendered = settings_doc.render()
    for name in Settings.model_fields:
        assert rendered.count(f"| `{settings_doc.env_name(name)}` |") == 1, name
    titles = [line[4:] for line in rendered.splitlines() if line.startswith("### ")]
    assert titles == [title for group, title in GROUPS.items()
                      if any(settings_doc.group_of(info) == group for info in Settings.model_fields.values())]


def test_the_check_mode_fails_on_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(f"# prose\n\n{settings_doc.BEGIN}\n| `SONGQUEUE_GONE` | |\n{settings_doc.END}\n\nmore prose\n")
    assert settings_doc.main(["--check", "--page", str(stale)]) == 1
    assert settings_doc.main(["--page", str(stale)]) == 0
    assert settings_doc.main(["--check", "--page", str(stale)]) == 0
    text = stale.read_text()
    assert text.startswith("# prose\n\n") and text.endswith("\n\nmore prose\n") and "SONGQUEUE_GONE" not in text


def test_every_settings_name_in_the_docs_is_a_setting() -> None:
    known = {settings_doc.env_name(name) for name in Settings.model_fields}
    wrong = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in _TEMPLATE.finditer(text):
            if not any(f"SONGQUEUE_{p.upper()}_{match.group(1)}" in known for p in PROVIDERS):
                wrong.append(f"{page.name}: {match.group(0)}")
        for match in _NAME.finditer(_TEMPLATE.sub("", text)):
            name = match.group(0)
            if name.endswith("_"):  # a family, SONGQUEUE_SUNO_* or SONGQUEUE_*
                ok = any(k.startswith(name) for k in known | NOT_SETTINGS)
            else:
                ok = name in known or name in NOT_SETTINGS
            if not ok:
                wrong.append(f"{page.name}: {name}")
    assert not wrong, wrong
