"""Shared fixtures: a private Redis, the sandbox gateway, real Celery workers.

Every server a test needs is started here on a free port and stopped afterwards; the
machine's own Redis is never touched.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "local"))
import stack  # noqa: E402

from tests.support.http_fixture import LocalServer  # noqa: E402
from tests.support.ports import start_on_free_port  # noqa: E402
from tests.support.prerequisites import require_amqp  # noqa: E402
from tests.support.rabbitmq import private_vhost  # noqa: E402
from workers.upstream.http_client import new_session  # noqa: E402

_DATABASES = itertools.count()
SANDBOX_KEY = "sk-sandboxTESTKEY0123456789abcdefXYZ"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A tiny real HTTP server with canned routes (tests/support/http_fixture.py)."""
    with LocalServer() as running:
        yield running


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """The workers' own HTTP session, as the providers and the downloader use it."""
    with new_session() as s:
        yield s


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("redis")
    proc, url = start_on_free_port(lambda port: stack.start_redis(data, port))
    yield url
    stack.stop(proc)


def fresh_database(redis_url: str) -> str:
    """The URL of a database of the private Redis (1-15; db 0 is the shared one), emptied
    first: every test that needs a database of its own takes it here, so none collide."""
    url = f"{redis_url.rsplit('/', 1)[0]}/{next(_DATABASES) % 15 + 1}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def redis_db_url(redis_url: str) -> str:
    return fresh_database(redis_url)


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def key_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


@dataclass
class Sandbox:
    proc: subprocess.Popen
    url: str
    api_key: str

    def stats(self) -> dict:
        return requests.get(f"{self.url}/_sandbox/stats", timeout=5).json()

    def configure(self, **config: object) -> None:
        requests.post(f"{self.url}/_sandbox/config", json=config, timeout=5).raise_for_status()

    def reset(self) -> None:
        requests.post(f"{self.url}/_sandbox/reset", timeout=5).raise_for_status()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    proc, url = stack.start_sandbox("--api-key", SANDBOX_KEY, "--generation-time", "2", "--song-duration", "3", log=log)
    yield Sandbox(proc, url, SANDBOX_KEY)
    stack.stop(proc)


@dataclass
class Stack:
    """One test's songqueue: its own key prefix and queues, storage folder and workers."""

    redis_url: str
    sandbox: Sandbox
    tmp: Path
    env: dict[str, str]
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start_worker(self, concurrency: int = 2, queues: str = "submit,poll,download,callback", **env: str) -> subprocess.Popen:
        name = f"w{len(self.workers)}"
        proc = stack.start_worker({**self.env, **env}, self.tmp / f"{name}.log", name=name,
                                  queues=queues, concurrency=concurrency)
        self.workers.append(proc)
        return proc

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "producer.cli.main", *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, cwd=stack.ROOT,
        )

    def queue(self):
        from producer import Settings, SongQueue

        return SongQueue(Settings(**{k.removeprefix("SONGQUEUE_").lower(): v
                                     for k, v in self.env.items() if k.startswith("SONGQUEUE_")}))

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.tmp.glob("w*.log"))

    def stop(self) -> None:
        for proc in self.workers:
            stack.stop(proc)


# Modules that should also run on RabbitMQ (SONGQUEUE_TEST_AMQP_URL, as .ci/run sets where
# RabbitMQ runs; Redis stays the job store) say so with
# `pytestmark = pytest.mark.parametrize("broker", BOTH_BROKERS, indirect=True)`.
BOTH_BROKERS = ["redis", "amqp"]


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> str:
    name = getattr(request, "param", "redis")
    if name == "amqp":
        require_amqp()  # skips, or under CI=true fails
    return name


@pytest.fixture
def make_stack(redis_url: str, sandbox: Sandbox, tmp_path: Path, broker: str) -> Iterator[Callable[..., Stack]]:
    """Build a stack; settings overrides as keyword arguments (SONGQUEUE_ names, no prefix)."""
    made: list[Stack] = []
    vhosts = ExitStack()

    def build(**overrides: str) -> Stack:
        # Our private Redis: each stack gets a database of its own, emptied first, so
        # queues never mix between tests.
        db_url = fresh_database(redis_url)
        stack_dir = tmp_path / f"stack{len(made)}"
        stack_dir.mkdir()
        env = stack.worker_env({
            "SONGQUEUE_BROKER_URL": (vhosts.enter_context(private_vhost(require_amqp())) if broker == "amqp"
                                     else db_url),
            "SONGQUEUE_REDIS_URL": db_url,
            "SONGQUEUE_KEY_PREFIX": f"t{uuid.uuid4().hex[:8]}",
            "SONGQUEUE_UDIO_BASE_URL": sandbox.url,
            "SONGQUEUE_UDIO_API_KEY": sandbox.api_key,
            "SONGQUEUE_MINIMAX_BASE_URL": sandbox.url,
            "SONGQUEUE_MINIMAX_API_KEY": sandbox.api_key,
            "SONGQUEUE_SUNO_BASE_URL": sandbox.url,
            "SONGQUEUE_SUNO_API_KEY": sandbox.api_key,
            "SONGQUEUE_STORAGE_URL": (stack_dir / "objects").as_uri(),
            "SONGQUEUE_POLL_INITIAL_DELAY": "0.5",
            "SONGQUEUE_POLL_MIN_INTERVAL": "0.5",
            "SONGQUEUE_POLL_MAX_INTERVAL": "5",
            "SONGQUEUE_RETRY_BASE_DELAY": "0.2",
            "SONGQUEUE_RETRY_MAX_DELAY": "2",
            # The sandbox and the tests' receivers run on 127.0.0.1 (url_guard refuses it by default).
            "SONGQUEUE_ALLOW_PRIVATE_NETWORKS": "true",
            **{f"SONGQUEUE_{k.upper()}": str(v) for k, v in overrides.items()},
            # A crash point acts only beside the fault tests' switch (workers/fault_points.py).
            **({"SONGQUEUE_TEST_FAULTS": "1"} if "fault_point" in overrides else {}),
        })
        built = Stack(redis_url, sandbox, stack_dir, env)
        made.append(built)
        return built

    yield build
    for built in made:
        built.stop()
    vhosts.close()
