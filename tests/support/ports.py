"""Servers on ports nobody else can take between a pick and a bind.

Flower, the sandbox, the hook server and moto bind port 0 and say which port they got.
redis-server cannot say, so it gets a free port picked for it and, if another process took
that port first (redis-server then exits), it is tried again on a fresh one.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import requests
import stack

T = TypeVar("T")


def start_on_free_port(start: Callable[[int], T], attempts: int = 3) -> T:
    """`start(port)` on a free port; again on a new one if the server exited (port taken)."""
    for attempt in range(attempts):
        try:
            return start(stack.free_port())
        except RuntimeError:  # stack's start_* raise this when the process exited at start
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def start_flower(env: dict[str, str], log: Path, *args: str, launcher: bool = False) -> tuple[subprocess.Popen, str]:
    """Flower on 127.0.0.1 port 0, fed by the workers' events: the process (its own group,
    for stack.stop) and its base URL, from the "Visit me at" line Flower logs once bound.

    `launcher`: through `songqueue flower` (auth from SONGQUEUE_FLOWER_* in `env`)."""
    command = (["producer.cli.main", "flower"] if launcher else ["celery", "-A", "workers.celery_app", "flower"])
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        proc = subprocess.Popen([stack.PYTHON, "-m", *command, "--port=0", "--address=127.0.0.1", *args],
                                env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=stack.ROOT,
                                start_new_session=True)

    def bound() -> str | None:
        match = re.search(r"Visit me at (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        return match.group(1) if match else None

    def answers(url: str) -> bool:
        try:
            return requests.get(f"{url}/healthcheck", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        url = stack.wait_until(lambda: proc.poll() is not None or bound(), 60, f"flower's port (log: {log})")
        if proc.poll() is not None:
            raise RuntimeError(f"flower exited with {proc.returncode}; see {log}")
        stack.wait_until(lambda: answers(str(url)), 30, f"flower at {url} to answer")
    except (TimeoutError, RuntimeError):
        stack.stop(proc)
        raise
    return proc, str(url)
