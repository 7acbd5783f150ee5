"""deploy/docker-compose.sentinel.yml over the base file: it validates (`docker-compose config`),
adds two replicas and three sentinels with healthchecks, and points every songqueue service
at the sentinels with paid submits waiting for a replica."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.support.prerequisites import require_tool
from tests.unit.deploy.test_compose_config import COMPOSE, ENV

SENTINEL = COMPOSE.with_name("docker-compose.sentinel.yml")


def _config() -> dict:
    tool = require_tool("docker-compose", "docker-compose")
    done = subprocess.run([tool, "-f", str(COMPOSE), "-f", str(SENTINEL), "config"], env=ENV, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_the_sentinel_overlay_validates_and_every_songqueue_service_goes_through_the_sentinels():
    services = _config()["services"]
    trio = {"redis", "redis-replica-1", "redis-replica-2", "sentinel-1", "sentinel-2", "sentinel-3"}
    assert trio <= set(services)
    for name in trio:
        assert "healthcheck" in services[name], name
    songqueue = [n for n, s in services.items() if str(s.get("image", "")).startswith("songqueue")]
    assert {"worker-submit", "worker-poll", "worker-download", "worker-callback", "beat", "api"} <= set(songqueue)
    for name in songqueue:
        env = services[name]["environment"]
        assert env["SONGQUEUE_BROKER_URL"].count("sentinel://") == 3, name
        assert env["SONGQUEUE_SENTINEL_MASTER"] == "songqueue"
        assert env["SONGQUEUE_REDIS_MIN_REPLICAS"] == "1"
    for name in ("redis", "redis-replica-1", "redis-replica-2"):  # a cut-off master stops taking writes
        assert "--min-replicas-to-write" in services[name]["command"], name


def test_the_overlay_names_only_services_the_base_file_has_or_adds_redis_nodes():
    base = set(yaml.safe_load(Path(COMPOSE).read_text())["services"])
    overlay = set(yaml.safe_load(SENTINEL.read_text())["services"])
    assert overlay - base == {"redis-replica-1", "redis-replica-2", "sentinel-1", "sentinel-2", "sentinel-3"}
