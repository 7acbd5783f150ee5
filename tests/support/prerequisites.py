"""A test whose prerequisite is missing skips locally, but fails in CI (`CI=true`), where a
skip would hide that the browser or RabbitMQ variant never ran."""

from __future__ import annotations

import os

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


def require_promtool() -> str:
    """The promtool binary (Debian's prometheus package; `make promtool` installs it)."""
    import shutil

    found = shutil.which("promtool")
    if found is None:
        missing("promtool not found (run `make promtool`: Debian's prometheus package)")
    return str(found)
