"""A test whose prerequisite is missing skips locally, but fails in CI (`CI=true`), where a
skip would hide that the browser or RabbitMQ variant never ran."""

from __future__ import annotations

import os
import shutil

import pytest

AMQP_URL = os.environ.get("SONGQUEUE_TEST_AMQP_URL", "")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(reason: str) -> None:
    """Skip with `reason`; under CI=true fail with it instead (raises either way)."""
    if in_ci():
        pytest.fail(f"prerequisite missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def require_amqp() -> str:
    """The RabbitMQ URL the RabbitMQ variants run on (SONGQUEUE_TEST_AMQP_URL, set by .ci/run)."""
    if not AMQP_URL:
        missing("SONGQUEUE_TEST_AMQP_URL not set (RabbitMQ variants; .ci/run sets it where RabbitMQ runs)")
    return AMQP_URL



def require_tool(name: str, make_target: str) -> str:
    """The path of the `name` binary (a Debian package `make MAKE_TARGET` installs)."""
    found = shutil.which(name)
    if found is None:
        missing(f"{name} not found (run `make {make_target}`)")
    return str(found)


def require_promtool() -> str:
    return require_tool("promtool", "promtool")
