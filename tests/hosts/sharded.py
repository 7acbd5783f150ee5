"""The job store on a Redis Cluster spread over hosts of their own (tests/hosts/netns.py).

    c1..c3  10.231.N.51-53  the cluster's masters :6379 (bus :16379)
    c4..c6  10.231.N.54-56  a replica each (redis-cli --cluster create --cluster-replicas 1)
    c7      10.231.N.57     a second replica of the master that serves the job store's slot
    rb      10.231.N.14     the broker: a Redis of its own (Celery has no Redis Cluster transport)
    gw, w1, w2, api         as in tests/hosts/cluster.py

As docs/operations.md "Redis Cluster" deploys it: `SONGQUEUE_REDIS_URL=redis-cluster://` with
the masters as seeds, a hash-tagged `SONGQUEUE_KEY_PREFIX` (every key of the job store on one
slot, one master's), every node `appendonly yes` and `cluster-node-timeout 5000`, and the
master of the job store's slot given two replicas, so the replica the cluster promotes still
has one to WAIT for. Everything else (gateway, API, workers, how a killed host comes back)
is the Sentinel layout's.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import ClassVar

import redis
import stack

from tests.hosts.cluster import LAYOUT, REDIS_PORT, Cluster, Setting, as_text

NODE_TIMEOUT_MS = 5000  # what docs/operations.md deploys
MASTERS = ("c1", "c2", "c3")
NODES = (*MASTERS, "c4", "c5", "c6")
SPARE = "c7"  # the job store's master's second replica
BROKER = "rb"
CLUSTER_SAFE = Setting("Redis Cluster, safe: appendfsync always, MIN_REPLICAS=1, min-replicas-to-write 1 (max-lag 10 s)",
                       "always", 1, 1, 10, store="cluster")
CLUSTER_DEFAULT = Setting("Redis Cluster, default: appendfsync everysec, MIN_REPLICAS=0", "everysec", 0,
                          store="cluster")


class ShardedCluster(Cluster):
    layout: ClassVar[dict[str, int]] = {
        **{k: v for k, v in LAYOUT.items() if not k.startswith("r")}, BROKER: 14,
        **{name: 51 + i for i, name in enumerate((*NODES, SPARE))}}

    # What a fault struck, for its heal: the job store's master it killed or cut off, and the
    # hosts on the majority side of that cut.
    struck: str = ""
    majority: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        self.prefix = "{h" + uuid.uuid4().hex[:8] + "}"  # the hash tag: one slot for the whole job store

    def store_overrides(self) -> dict[str, str]:
        seeds = ",".join(f"{self.host(n).address}:{REDIS_PORT}" for n in MASTERS)
        return {"BROKER_URL": f"redis://{self.host(BROKER).address}:{REDIS_PORT}/0",
                "REDIS_URL": f"redis-cluster://{seeds}"}

    # -- who serves the job store ---------------------------------------------------------------

    def slot_owner(self, asker: str | None = None) -> tuple[str, list[str]] | None:
        """(master, replicas) of the job store's slot as `asker` (or the first node that
        answers) sees it; None when no node answers."""
        by_address = {h.address: n for n, h in self.net.hosts.items()}
        for name in [asker] if asker else [*NODES, SPARE]:
            try:
                client = self.redis(name)
                slot = int(client.execute_command("CLUSTER KEYSLOT", self.prefix))
                shards = client.execute_command("CLUSTER SLOTS")
            except redis.RedisError:
                continue
            for start, end, master, *replicas in shards:
                if start <= slot <= end:
                    return by_address[as_text(master[0])], [by_address[as_text(r[0])] for r in replicas]
        return None

    def node_id(self, name: str) -> str:
        return as_text(self.redis(name).execute_command("CLUSTER MYID"))

    def cluster_ok(self, name: str) -> bool:
        try:
            return self.redis(name).execute_command("CLUSTER INFO").get("cluster_state") == "ok"
        except redis.RedisError:
            return False

    # -- bringing it up -------------------------------------------------------------------------

    def _start_store(self) -> None:
        self._run(BROKER, lambda: self._redis(BROKER, durable=False))
        for name in (*NODES, SPARE):
            self._run(name, lambda name=name: self._node(name))
        cli = str(Path(stack.redis_binary()).with_name("redis-cli"))
        made = subprocess.run([cli, "--cluster", "create", *(f"{self.host(n).address}:{REDIS_PORT}" for n in NODES),
                               "--cluster-replicas", "1", "--cluster-yes"], capture_output=True, text=True, timeout=60)
        if made.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {made.stdout[-1500:]} {made.stderr[-500:]}")
        stack.wait_until(lambda: all(self.cluster_ok(n) for n in NODES), 60, "cluster_state ok on every node")
        master, _ = self.slot_owner() or ("", [])
        spare = self.redis(SPARE)
        spare.execute_command("CLUSTER MEET", self.host(master).address, REDIS_PORT)
        master_id = self.node_id(master)
        stack.wait_until(lambda: _knows(spare, master_id), 30, f"{SPARE} to meet {master}")
        spare.execute_command("CLUSTER REPLICATE", master_id)
        stack.wait_until(lambda: len((self.slot_owner() or ("", []))[1]) == 2
                         and self.role(SPARE).get("master_link_status") == "up"
                         and all(self.cluster_ok(n) for n in (*NODES, SPARE)), 60,
                         f"{master}, the job store's master, to have two replicas in sync")

    def _node(self, name: str) -> subprocess.Popen:
        conf = self.tmp / name / "redis" / "nodes.conf"  # kept across a restart: the node rejoins as itself
        return self._redis(name, "--cluster-enabled", "yes", "--cluster-config-file", str(conf),
                           "--cluster-node-timeout", str(NODE_TIMEOUT_MS))


def _knows(client: redis.Redis, node_id: str) -> bool:
    try:
        return node_id in str(client.execute_command("CLUSTER NODES"))  # parsed or not, the id is in it
    except redis.RedisError:
        return False
