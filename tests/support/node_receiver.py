"""A Node.js webhook receiver (tests/support/node/receiver.js) verifying with the `standardwebhooks`
npm package: installed once into var/node-cache by `npm install --prefix` (`make node`); without
node or npm the test skips, under CI=true it fails (tests/support/prerequisites.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
import stack

from tests.support.prerequisites import missing

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "var" / "node-cache"
PACKAGE = "standardwebhooks@1.3.0"
SCRIPT = Path(__file__).parent / "node" / "receiver.js"


def node_modules() -> Path:
    """var/node-cache/node_modules with the package in it, installed on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing("node and npm not found (run `make node`)")
    modules = CACHE / "node_modules"
    if not (modules / "standardwebhooks" / "package.json").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([str(npm), "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", PACKAGE],
                              capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            missing(f"npm install {PACKAGE} failed: {done.stderr.strip()[-300:]}")
    return modules


class NodeReceiver:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def deliveries(self) -> list[dict]:
        return json.loads(requests.get(f"{self.url}/deliveries", timeout=10).text)

    def use_secret(self, secret: str) -> None:
        requests.post(f"{self.url}/secret", data=secret, timeout=10).raise_for_status()

    def answer(self, code: int) -> None:
        requests.post(f"{self.url}/status/{code}", timeout=10).raise_for_status()


@contextmanager
def node_receiver(secret: str) -> Iterator[NodeReceiver]:
    modules = node_modules()
    env = {**os.environ, "NODE_PATH": str(modules), "RECEIVER_SECRET": secret}
    proc = subprocess.Popen([shutil.which("node") or "node", str(SCRIPT)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""  # the port, once it listens
        if not line.strip().isdigit():
            raise RuntimeError("the node receiver did not start")
        yield NodeReceiver(int(line))
    finally:
        stack.stop(proc, timeout=10)
