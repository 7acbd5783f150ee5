"""`SONGQUEUE_*` variables that no setting reads, each with its likeliest intended name.

Settings ignore names they do not know (so one `.env` can serve several programs), which
turns a typo such as `SONGQUEUE_UDIO_APIKEY` into a silently unset key. `songqueue doctor`
lists them; the workers, beat, the CLI and the servers log them as a warning at start-up.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

PREFIX = "SONGQUEUE_"
# Not settings, but ours: the sandbox's key, the tests' RabbitMQ, and the fault tests' crash point
# with its switch (workers/fault_points.py; doctor reports an armed point on its own line).
FAULT_POINT, TEST_FAULTS = "SONGQUEUE_FAULT_POINT", "SONGQUEUE_TEST_FAULTS"
OTHER_PROGRAMS = frozenset({"SONGQUEUE_SANDBOX_API_KEY", "SONGQUEUE_TEST_AMQP_URL", FAULT_POINT, TEST_FAULTS})
log = logging.getLogger("songqueue.settings")


@dataclass(frozen=True)
class UnknownVariable:
    name: str
    source: str  # "environment" or the .env file's path
    suggestion: str | None

    def describe(self) -> str:
        hint = f"; did you mean {self.suggestion}?" if self.suggestion else ""
        return f"{self.name} (in the {self.source}) is not a songqueue setting{hint}"


def known_names() -> frozenset[str]:
    from producer.core.settings import Settings  # settings import the provider table; keep this module light

    return frozenset(PREFIX + name.upper() for name in Settings.model_fields) | OTHER_PROGRAMS


def unknown_variables(environ: Mapping[str, str] | None = None, env_file: str | Path = ".env") -> list[UnknownVariable]:
    """Unknown names in the environment and in `env_file` (matched case-insensitively, as Settings do)."""
    known = known_names()
    sources: list[tuple[str, list[str]]] = [("environment", list(os.environ if environ is None else environ))]
    if Path(env_file).is_file():
        sources.append((str(env_file), [k for k in dotenv_values(env_file) if k]))
    found: dict[str, UnknownVariable] = {}
    for source, names in sources:
        for raw in names:
            name = raw.upper()
            if not name.startswith(PREFIX) or name in known or name in found:
                continue
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
            found[name] = UnknownVariable(raw, source, close[0] if close else None)
    return sorted(found.values(), key=lambda v: v.name)


def warn_unknown(logger: logging.Logger = log) -> None:
    """Log each unknown variable once, as a warning: the start-up check of every program."""
    for variable in unknown_variables():
        logger.warning("%s", variable.describe())
