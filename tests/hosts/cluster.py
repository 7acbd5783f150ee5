"""songqueue spread over hosts of their own (tests/hosts/netns.py), every role a real process.

    r1  10.231.N.11  redis master :6379   + sentinel :26379
    r2  10.231.N.12  redis replica :6379  + sentinel :26379
    r3  10.231.N.13  redis replica :6379  + sentinel :26379
    gw  10.231.N.20  the sandbox gateway :8808
    w1  10.231.N.31  celery worker, every queue
    w2  10.231.N.32  celery worker, every queue
    api 10.231.N.40  `songqueue api` :8800, the HTTP API
    driver 10.231.N.1 (the bridge, root namespace): submits over the API, watches, checks

The workers and the driver reach Redis only through the sentinels (SONGQUEUE_BROKER_URL =
SONGQUEUE_REDIS_URL = sentinel://r1;r2;r3, as docs/operations.md "Redis Sentinel" deploys
it), the gateway by its own address. Each process starts in its host's namespace with
`ip netns exec`; a host remembers how to start its processes, so a killed host comes back
the way it was first brought up. The sentinel config is tests/support/sentinel_cluster.py's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import redis
import stack

from producer import Settings, SongQueue
from producer.core.store.api_keys import KeyStore
from tests.faults.fault_scenarios import FAST
from tests.faults.harness import SANDBOX_KEY, gateway
from tests.hosts.netns import Host, Network
from tests.support.sentinel_cluster import MASTER_NAME

REDIS_PORT = 6379
SENTINEL_PORT = 26379
SANDBOX_PORT = 8808
API_PORT = 8800
LAYOUT = {"r1": 11, "r2": 12, "r3": 13, "gw": 20, "w1": 31, "w2": 32, "api": 40}
WORKERS = ("w1", "w2")
REDIS_HOSTS = ("r1", "r2", "r3")
REPLICAS = ("r2", "r3")
GATEWAY = "udio 302.ai"


@dataclass(frozen=True)
class Setting:
    """How durable the Redis trio is: the knobs docs/operations.md calls safe or not.

    `min_replicas` is SONGQUEUE_REDIS_MIN_REPLICAS (the submit WAITs for its intent); the
    last two are every Redis node's own `min-replicas-to-write` / `min-replicas-max-lag`: a
    master that has heard from no replica for `max_lag` seconds refuses writes, so a
    minority master stops gathering writes that its rejoining will drop (0: not set)."""

    name: str
    appendfsync: str
    min_replicas: int
    replicas_to_write: int = 0
    max_lag: int = 10
    # The job store's kind: "sentinel" (this module), "cluster" (tests/hosts/sharded.py) or
    # "rabbit" (one Redis, the broker a RabbitMQ cluster: tests/hosts/rabbit_cluster.py).
    store: str = "sentinel"


# The layout docs/operations.md deploys: two replicas, so the promoted one still has one of its own.
SAFE = Setting("safe: appendfsync always, MIN_REPLICAS=1, min-replicas-to-write 1 (max-lag 10 s)", "always", 1, 1, 10)
DEFAULT = Setting("default: appendfsync everysec, MIN_REPLICAS=0", "everysec", 0)


@dataclass
class Cluster:
    tmp: Path
    setting: Setting
    net: Network = field(default_factory=Network)
    starters: dict[str, list[Callable[[], subprocess.Popen]]] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)
    layout: ClassVar[dict[str, int]] = LAYOUT

    def __post_init__(self) -> None:
        self.prefix = f"h{uuid.uuid4().hex[:8]}"
        for name, octet in self.layout.items():
            self.net.add(name, octet)
            self.starters[name] = []

    # -- addresses and clients -----------------------------------------------------------------

    def host(self, name: str) -> Host:
        return self.net.hosts[name]

    @property
    def sentinel_url(self) -> str:
        return ";".join(f"sentinel://{self.host(h).address}:{SENTINEL_PORT}" + ("/0" if i == 0 else "")
                        for i, h in enumerate(REDIS_HOSTS))

    @property
    def sandbox_url(self) -> str:
        return f"http://{self.host('gw').address}:{SANDBOX_PORT}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host('api').address}:{API_PORT}"

    def api_key(self) -> str:
        """A key's secret for the driver, made the way `songqueue keys create` makes one; its
        request rate raised so a run's burst of submits is not what the key limits."""
        _, secret = KeyStore(self.queue().store.redis, self.prefix).create(
            "hosts driver", None, ["submit", "read"], request_rate=1000)
        return secret

    def store_overrides(self) -> dict[str, str]:
        """Where the broker and the job store are: both on the Sentinel trio."""
        return {"BROKER_URL": self.sentinel_url, "REDIS_URL": self.sentinel_url, "SENTINEL_MASTER": MASTER_NAME}

    def host_overrides(self, name: str) -> dict[str, str]:
        """The settings of the processes on host `name` (the API, a worker): `overrides()`
        unless a layout gives a host its own (the order of a failover list)."""
        return self.overrides()

    def overrides(self) -> dict[str, str]:
        return {
            **self.store_overrides(), "KEY_PREFIX": self.prefix, "STORAGE_URL": (self.tmp / "objects").as_uri(),
            "ALLOW_PRIVATE_NETWORKS": "true", "REDIS_MIN_REPLICAS": str(self.setting.min_replicas),
            **gateway(GATEWAY, self.sandbox_url).settings, **FAST,
        }

    def settings(self) -> Settings:
        return Settings(**{k.lower(): v for k, v in self.overrides().items()})

    def queue(self) -> SongQueue:
        return SongQueue(self.settings())

    def redis(self, name: str) -> redis.Redis:
        return redis.Redis(self.host(name).address, REDIS_PORT, socket_connect_timeout=1, socket_timeout=3)

    def sentinel(self, name: str) -> redis.Redis:
        return redis.Redis(self.host(name).address, SENTINEL_PORT, socket_connect_timeout=1, socket_timeout=3)

    def master_by(self, sentinel: str) -> str | None:
        """The master's host as one sentinel names it (None when it cannot be asked)."""
        try:
            found = self.sentinel(sentinel).sentinel_get_master_addr_by_name(MASTER_NAME)
        except redis.RedisError:
            return None
        by_address = {h.address: n for n, h in self.net.hosts.items()}
        return by_address.get(as_text(found[0])) if found else None

    def role(self, name: str) -> dict:
        try:
            return self.redis(name).info("replication")
        except redis.RedisError:
            return {}

    # -- bringing hosts up ---------------------------------------------------------------------

    def start(self) -> Cluster:
        """Every host up: the gateway, the job store and broker, the API, the workers."""
        self._run("gw", self._sandbox)
        self._start_store()
        stack.wait_until(lambda: _answers(self.sandbox_url, "/_sandbox/stats"), 30, "the sandbox gateway")
        self._run("api", self._api)
        for name in WORKERS:
            self._run(name, lambda name=name: self._worker(name), wait=False)
        for name in WORKERS:
            self.wait_worker(name)
        return self

    def _start_store(self) -> None:
        """The Redis trio in sync and seen by every sentinel."""
        self._run("r1", lambda: self._redis("r1"))
        for replica in REPLICAS:
            self._run(replica, lambda replica=replica: self._redis(replica, "--replicaof", self.host("r1").address,
                                                                   str(REDIS_PORT)))
        for replica in REPLICAS:
            stack.wait_until(lambda replica=replica: self.role(replica).get("master_link_status") == "up", 30,
                             f"the replica on {replica} in sync")
        for name in REDIS_HOSTS:
            self._run(name, lambda name=name: self._sentinel(name))
        for name in REDIS_HOSTS:  # a failover needs a quorum that knows the replica and each other
            stack.wait_until(lambda name=name: self._knows_all(name), 60, f"sentinel on {name} to see everything")

    def restart(self, name: str) -> None:
        """Bring a killed host back with the processes it first ran."""
        for starter in self.starters[name]:
            self.procs.append(starter())
        if name in WORKERS:
            self.wait_worker(name)

    def wait_worker(self, name: str) -> None:
        log = self._log(name, "worker")
        stack.wait_until(lambda: "ready." in log.read_text(errors="replace"), 90, f"the worker on {name} ({log})")

    def stop(self) -> None:
        self.net.close()  # SIGKILLs every process of every host, removes namespaces and bridge
        for proc in self.procs:
            proc.wait(10)

    def _run(self, name: str, starter: Callable[[], subprocess.Popen], wait: bool = True) -> None:
        self.starters[name].append(starter)
        self.procs.append(starter())

    def _log(self, name: str, role: str) -> Path:
        return self.tmp / f"{name}-{role}.log"

    def _spawn(self, name: str, role: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self._log(name, role)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as out:
            return subprocess.Popen(self.host(name).exec_argv(argv), env=env, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=stack.ROOT, start_new_session=True)

    def _redis(self, name: str, *extra: str, durable: bool = True) -> subprocess.Popen:
        """A redis-server on the host; `durable`: with the setting's appendfsync and
        min-replicas-to-write (a job store's node), else the defaults (a broker of its own)."""
        data = self.tmp / name / "redis"
        data.mkdir(parents=True, exist_ok=True)
        safety = (("--min-replicas-to-write", str(self.setting.replicas_to_write),
                   "--min-replicas-max-lag", str(self.setting.max_lag))
                  if durable and self.setting.replicas_to_write else ())
        proc = self._spawn(name, "redis", [
            stack.redis_binary(), "--port", str(REDIS_PORT), "--bind", self.host(name).address, "--dir", str(data),
            "--appendonly", "yes", "--appendfsync", self.setting.appendfsync if durable else "everysec",
            "--save", "", "--daemonize", "no", *safety, *extra])
        stack.wait_until(lambda: proc.poll() is not None or bool(self.role(name)), 20, f"redis on {name}")
        return proc

    def _sentinel(self, name: str) -> subprocess.Popen:
        data = self.tmp / name / "sentinel"
        conf = data / "sentinel.conf"
        if not conf.exists():  # a restarted sentinel keeps what it rewrote into its file
            data.mkdir(parents=True, exist_ok=True)
            conf.write_text(
                f"port {SENTINEL_PORT}\nbind {self.host(name).address}\ndaemonize no\ndir {data}\n"
                f"sentinel monitor {MASTER_NAME} {self.host('r1').address} {REDIS_PORT} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 2000\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n")
        proc = self._spawn(name, "sentinel", [stack.redis_binary(), str(conf), "--sentinel"])
        stack.wait_until(lambda: proc.poll() is not None or self.master_by(name) is not None, 20,
                         f"the sentinel on {name}")
        return proc

    def _knows_all(self, name: str) -> bool:
        try:
            client = self.sentinel(name)
            return (len(client.sentinel_slaves(MASTER_NAME)) >= len(REPLICAS)
                    and len(client.sentinel_sentinels(MASTER_NAME)) >= 2)
        except redis.RedisError:
            return False

    def _sandbox(self) -> subprocess.Popen:
        return self._spawn("gw", "sandbox", [
            sys.executable, "-m", "sandbox", "--host", self.host("gw").address, "--port", str(SANDBOX_PORT),
            "--api-key", SANDBOX_KEY, "--generation-time", "2", "--song-duration", "2"])

    def _env(self, name: str) -> dict[str, str]:
        env = stack.worker_env({f"SONGQUEUE_{k}": v for k, v in self.host_overrides(name).items()})
        env["PYTHONPATH"] = os.pathsep.join([str(stack.ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        return env

    def _api(self) -> subprocess.Popen:
        proc = self._spawn("api", "api", [
            sys.executable, "-m", "producer.cli.main", "api", "--host", self.host("api").address,
            "--port", str(API_PORT)], self._env("api"))
        stack.wait_until(lambda: proc.poll() is not None or _answers(self.api_url, "/readyz"), 60,
                         f"the API on api ({self._log('api', 'api')})")
        return proc

    def _worker(self, name: str) -> subprocess.Popen:
        log = self._log(name, "worker")
        if log.exists():  # "ready." must be this start's
            log.rename(log.with_suffix(f".{len(list(self.tmp.glob(f'{name}-worker.*')))}.old"))
        env = self._env(name)
        return self._spawn(name, "worker", [
            sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "submit,poll,download,callback",
            "-c", "2", "-n", f"{name}-{self.net.tag}@%h", "--loglevel", "INFO", "--without-gossip",
            "--without-mingle"], env)


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _answers(url: str, path: str) -> bool:
    import requests

    try:
        return requests.get(f"{url}{path}", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def upstream_calls(stats: dict) -> int:
    """Every request the gateway counted: submits, fetches (polls) and downloads."""
    return sum(int(v) for k, v in stats.items() if isinstance(v, int) and re.fullmatch(
        r"(submit|fetch|download)_requests", k))
