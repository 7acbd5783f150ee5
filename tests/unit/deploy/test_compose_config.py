"""deploy/docker-compose.yml validates (`docker-compose config`), with and without the
sandbox profile; every long-running service has a healthcheck and a pinned image."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.prerequisites import require_tool

COMPOSE = Path(__file__).resolve().parents[3] / "deploy" / "docker-compose.yml"
# What the file's header says to export for the sandbox profile.
ENV = {"REDIS_PASSWORD": "dev", "MINIO_ROOT_PASSWORD": "devdevdev", "SONGQUEUE_FLOWER_PASSWORD": "dev",
       "SONGQUEUE_UDIO_BASE_URL": "http://sandbox:8808", "SONGQUEUE_UDIO_API_KEY": "sandbox-key", "PATH": "/usr/bin:/bin"}


@pytest.mark.parametrize("profile", [[], ["--profile", "sandbox"]], ids=["default", "sandbox"])
def test_compose_config_validates(profile):
    tool = require_tool("docker-compose", "docker-compose")
    done = subprocess.run([tool, "-f", str(COMPOSE), *profile, "config"], env=ENV, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert services["sandbox"]["profiles"] == ["sandbox"]  # `config` lists profiled services too
    assert services["worker-submit"]["environment"]["SONGQUEUE_UDIO_BASE_URL"] == "http://sandbox:8808"


def test_every_service_has_a_healthcheck_and_a_pinned_image():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    anchors = yaml.safe_load(COMPOSE.read_text())["x-songqueue"]
    for name, service in services.items():
        image = service.get("image") or anchors["image"]
        assert ":" in image and not image.endswith(":latest"), (name, image)
        if name != "minio-bucket":  # a one-shot job
            assert "healthcheck" in service, name
