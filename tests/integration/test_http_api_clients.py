"""Clients nobody here wrote: a Node.js service (plain fetch) and schemathesis, against a running API."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.test_http_api import start_api  # noqa: F401 - the fixture
from tests.support.prerequisites import missing

pytestmark = pytest.mark.integration
NODE_CLIENT = Path(__file__).resolve().parents[1] / "clients" / "node_client.mjs"


def test_a_node_service_submits_follows_events_and_downloads(start_api, tmp_path):  # noqa: F811
    node = shutil.which("node")
    if node is None:
        missing("node is not on the PATH")
    api = start_api()
    key = api.key("--scopes", "submit,read")
    out = tmp_path / "song.mp3"
    done = subprocess.run([node, str(NODE_CLIENT), api.url, key, str(out), f"node {uuid.uuid4().hex[:8]}"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["end"] == "SUCCEEDED" and report["states"][-1] == "SUCCEEDED"
    assert report["content_type"] == "audio/mpeg" and report["bytes"] == out.stat().st_size > 0
    assert report["etag"] == f'"{hashlib.sha256(out.read_bytes()).hexdigest()}"'


def test_schemathesis_finds_no_server_error_and_no_schema_violation(start_api, tmp_path):  # noqa: F811
    cli = [str(Path(sys.executable).parent / "schemathesis")]  # the CLI, run as a user would
    if not Path(cli[0]).exists():
        missing("schemathesis is not installed (the dev extra)")
    api = start_api(workers=False)
    key = api.key("--scopes", "submit,read")
    base = ["run", f"{api.url}/openapi.json", "--url", api.url, "--max-examples", "10", "--phases", "examples,coverage,fuzzing",
            # A budget, not an assertion: it keeps `make test` short on a busy machine.
            "--max-time", "25",
            "--exclude-path-regex", "/events$", "--suppress-health-check", "all", "--no-color"]
    with_key = subprocess.run([*cli, *base, "-H", f"Authorization: Bearer {key}",
                               "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                               "response_schema_conformance"],
                              capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert with_key.returncode == 0, with_key.stdout[-4000:]
    without_key = subprocess.run([*cli, *base, "--checks", "ignored_auth"],
                                 capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert without_key.returncode == 0, without_key.stdout[-4000:]
