"""A real S3 HTTP endpoint for tests: moto's standalone server as a subprocess on a free port.

Clients reach it through SONGQUEUE_S3_ENDPOINT_URL exactly as they would a MinIO server.
Import the fixture into a test module: `from tests.support.s3_server import s3  # noqa: F401`.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import stack

# moto accepts any credentials; these are what every process of a test gets.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing-access-key",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3Server:
    proc: subprocess.Popen
    endpoint: str

    def client(self) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"], aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=AWS_ENV["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=self.endpoint)

    def new_bucket(self) -> str:
        name = f"songs-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.RequestException:
        return False


def _bound_endpoint(log: Path) -> str | None:
    match = re.search(r"Running on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
    return match.group(1) if match else None


def start_s3_server(log: Path) -> S3Server:
    """moto's server on port 0: it binds a free port itself and logs which (no pick-then-bind race)."""
    handle = open(log, "w")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        endpoint = stack.wait_until(lambda: proc.poll() is not None or _bound_endpoint(log), 60, "moto server's port")
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}; see {log}")
        stack.wait_until(lambda: proc.poll() is not None or _answers(endpoint), 60, f"moto server at {endpoint}")
    except (TimeoutError, RuntimeError):
        stack.stop(proc)
        raise
    return S3Server(proc, endpoint)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """The S3 endpoint; the AWS variables are set for this process and the ones it starts."""
    server = start_s3_server(tmp_path_factory.mktemp("s3") / "moto.log")
    patch = pytest.MonkeyPatch()
    for name, value in AWS_ENV.items():
        patch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        patch.delenv(name, raising=False)
    yield server
    patch.undo()
    stack.stop(server.proc)
