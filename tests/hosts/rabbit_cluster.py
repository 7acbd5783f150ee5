"""songqueue on a three-node RabbitMQ cluster, every node a host of its own (tests/hosts/netns.py).

    q1  10.231.N.41  RabbitMQ node rabbit@q1 :5672 (epmd :4369, distribution :25672)
    q2  10.231.N.42  RabbitMQ node rabbit@q2
    q3  10.231.N.43  RabbitMQ node rabbit@q3
    r1  10.231.N.11  the job store: one redis-server, appendfsync always
    gw  10.231.N.20  the sandbox gateway :8808
    w1  10.231.N.31  celery worker, every queue
    gw, w1, w2, api  as in tests/hosts/cluster.py

The broker is what these cells try, so the job store is one plain Redis (appendfsync always)
rather than the Sentinel trio: its failovers are the Redis cells' subject, and three Erlang
nodes already fill two cores. Workers, API and driver reach the broker through kombu's
failover URL (`amqp://…@q1//;amqp://…@q2//;amqp://…@q3//`, by address), w2's list starting at
q2 so the two workers do not all hang on one node. The nodes form one cluster by classic_config peer
discovery, `cluster_partition_handling = pause_minority`, the task queues quorum queues
(SONGQUEUE_AMQP_QUEUE_TYPE=quorum) in the safe setting.

How a node is started, and why (each found the hard way):
- `rabbit@qN` must resolve inside every namespace: /etc/netns/NS/hosts (`Network.name_hosts`);
  an address as the host part fails with `epmd_error ... address`.
- `epmd -daemon` in each namespace first (it binds that namespace's 0.0.0.0:4369).
- /usr/lib/rabbitmq/bin/rabbitmq-server and rabbitmqctl as root with HOME holding one cookie,
  not the packaged /usr/sbin wrapper (it switches to the rabbitmq user and its own cookie),
  and RABBITMQ_CONF_ENV_FILE pointing at an empty file: the system's
  /etc/rabbitmq/rabbitmq-env.conf may pin epmd and the distribution to 127.0.0.1
  (ERL_EPMD_ADDRESS, inet_dist_use_interface), which no other namespace can reach.
- `+S 1:1` (two cores) and net_ticktime 10 s, so a partition is noticed (and pause_minority
  pauses the minority) in about ten seconds instead of a minute.
- q1 first, then q2 and q3 together: started all at once, each may find no peer up yet and
  boot a cluster of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import stack

from tests.hosts.cluster import LAYOUT, REDIS_PORT, Cluster, Setting

RABBIT_HOSTS = ("q1", "q2", "q3")
AMQP_PORT = 5672
DIST_PORT = 25672
USER = "songqueue"
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
BOOT_S = 180  # an Erlang node's boot on two busy cores


def missing_rabbitmq() -> str | None:
    """Why this machine cannot run the RabbitMQ cells (None when it can)."""
    for tool in ("rabbitmq-server", "rabbitmqctl"):
        if not (RABBIT_BIN / tool).exists():
            return f"{RABBIT_BIN / tool} not found (Debian package rabbitmq-server)"
    if shutil.which("epmd") is None:
        return "epmd not found (Debian package erlang-base)"
    return None


@dataclass(frozen=True)
class RabbitSetting(Setting):
    """The broker's knobs; the inherited ones are the job store Redis's (appendfsync always,
    no replica to wait for)."""

    queue_type: str = "quorum"  # SONGQUEUE_AMQP_QUEUE_TYPE
    partition_handling: str = "pause_minority"


# What docs/operations.md "RabbitMQ quorum queues" calls safe, and Celery's default queues beside it.
RABBIT_SAFE = RabbitSetting("RabbitMQ, safe: quorum queues, pause_minority", "always", 0, store="rabbit")
RABBIT_CLASSIC = RabbitSetting("RabbitMQ, classic queues, pause_minority", "always", 0, store="rabbit",
                               queue_type="classic")


@dataclass
class RabbitCluster(Cluster):
    layout: ClassVar[dict[str, int]] = {
        **{k: v for k, v in LAYOUT.items() if k not in ("r2", "r3")}, **{h: 41 + i for i, h in enumerate(RABBIT_HOSTS)}}
    victim: str = "q1"  # the node a nemesis killed, for its heal to bring back

    def __post_init__(self) -> None:
        super().__post_init__()
        self.net.name_hosts(RABBIT_HOSTS)
        self.password = secrets.token_hex(12)
        self.home = self.tmp / "rabbit-home"
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        (self.home / "rabbitmq-env.conf").write_text("")
        (self.home / "enabled_plugins").write_text("[].\n")

    @property
    def rabbit_setting(self) -> RabbitSetting:
        assert isinstance(self.setting, RabbitSetting)
        return self.setting

    # -- addresses and clients -----------------------------------------------------------------

    def broker_url(self, first: str = "q1") -> str:
        """kombu's failover URL over the three nodes, by address, starting at `first`."""
        start = RABBIT_HOSTS.index(first)
        order = RABBIT_HOSTS[start:] + RABBIT_HOSTS[:start]
        return ";".join(f"amqp://{USER}:{self.password}@{self.host(h).address}:{AMQP_PORT}//" for h in order)

    def store_overrides(self) -> dict[str, str]:
        """The broker on the three nodes (and how its queues are made), the job store on r1."""
        return {"BROKER_URL": self.broker_url(), "AMQP_QUEUE_TYPE": self.rabbit_setting.queue_type,
                "REDIS_URL": f"redis://{self.host('r1').address}:{REDIS_PORT}/0"}

    def host_overrides(self, name: str) -> dict[str, str]:
        return {**self.overrides(), "BROKER_URL": self.broker_url("q2" if name == "w2" else "q1")}

    def ctl(self, via: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """rabbitmqctl against rabbit@VIA, run inside VIA's namespace with the cluster's cookie."""
        argv = [str(RABBIT_BIN / "rabbitmqctl"), "-n", f"rabbit@{via}", *args]
        return subprocess.run(self.host(via).exec_argv(argv), env=self._node_env(via), capture_output=True, text=True,
                              timeout=timeout)

    def cluster_status(self, via: str) -> dict:
        """`rabbitmqctl cluster_status` as rabbit@VIA sees it ({} when it cannot be asked)."""
        try:
            done = self.ctl(via, "cluster_status", "--formatter", "json", timeout=30)
            return json.loads(done.stdout) if done.returncode == 0 else {}
        except (subprocess.TimeoutExpired, json.JSONDecodeError):
            return {}

    def running(self, via: str) -> set[str]:
        """The hosts rabbit@VIA lists as running nodes of its cluster."""
        return {node.split("@", 1)[1] for node in self.cluster_status(via).get("running_nodes", [])}

    def answers(self, name: str) -> bool:
        """The node's AMQP listener takes a connection from the driver (a paused node's does not)."""
        return _connects(self.host(name).address, AMQP_PORT)

    def leader(self, queue: str, via: str = "q1") -> str | None:
        """The host of the quorum queue's leader (None for a classic queue, or when unknown)."""
        try:
            done = self.ctl(via, "list_queues", "name", "leader", "--formatter", "json", "-q", timeout=30)
            rows = json.loads(done.stdout) if done.returncode == 0 else []
        except (subprocess.TimeoutExpired, json.JSONDecodeError):
            return None
        for row in rows:
            if row.get("name") == queue and "@" in str(row.get("leader", "")):
                return str(row["leader"]).split("@", 1)[1]
        return None

    # -- bringing hosts up ---------------------------------------------------------------------

    def _start_store(self) -> None:
        """The job store's Redis, and three RabbitMQ nodes in one cluster, every listener up."""
        self._run("r1", lambda: self._redis("r1"))
        self._run("q1", lambda: self._rabbit("q1"))
        stack.wait_until(lambda: self.running("q1") == {"q1"}, BOOT_S, "rabbit@q1 to boot")
        for name in RABBIT_HOSTS[1:]:
            self._run(name, lambda name=name: self._rabbit(name))
        self.wait_all_running()
        stack.wait_until(lambda: all(self.answers(h) for h in RABBIT_HOSTS), 30, "every node's AMQP listener")

    def restart(self, name: str) -> None:
        super().restart(name)
        if name in RABBIT_HOSTS:
            self.wait_all_running()

    def wait_all_running(self) -> None:
        everyone = set(RABBIT_HOSTS)
        stack.wait_until(lambda: all(self.running(h) == everyone for h in RABBIT_HOSTS), BOOT_S,
                         "every node to list all three running")

    def _node_env(self, name: str) -> dict[str, str]:
        """A RabbitMQ node's (and its rabbitmqctl's) environment: see the module's notes."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        data = self.tmp / name / "rabbit"
        env.update(
            HOME=str(self.home), RABBITMQ_CONF_ENV_FILE=str(self.home / "rabbitmq-env.conf"),
            RABBITMQ_NODENAME=f"rabbit@{name}", RABBITMQ_NODE_IP_ADDRESS=self.host(name).address,
            RABBITMQ_NODE_PORT=str(AMQP_PORT), RABBITMQ_DIST_PORT=str(DIST_PORT),
            RABBITMQ_MNESIA_BASE=str(data / "mnesia"), RABBITMQ_LOG_BASE=str(data / "log"),
            RABBITMQ_CONFIG_FILE=str(data / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.home / "enabled_plugins"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 1:1 -kernel net_ticktime 10",
        )
        return env

    def _rabbit(self, name: str) -> subprocess.Popen:
        data = self.tmp / name / "rabbit"
        data.mkdir(parents=True, exist_ok=True)
        peers = "".join(f"cluster_formation.classic_config.nodes.{i} = rabbit@{h}\n"
                        for i, h in enumerate(RABBIT_HOSTS, 1))
        (data / "rabbitmq.conf").write_text(
            "cluster_formation.peer_discovery_backend = classic_config\n" + peers +
            f"cluster_partition_handling = {self.rabbit_setting.partition_handling}\n"
            # The first node to boot a blank cluster creates this user; guest is loopback-only.
            f"default_user = {USER}\ndefault_pass = {self.password}\n"
            "default_user_tags.administrator = true\n"
            "default_permissions.configure = .*\ndefault_permissions.read = .*\ndefault_permissions.write = .*\n")
        env = self._node_env(name)
        subprocess.run(self.host(name).exec_argv(["epmd", "-daemon"]), env=env, check=True, timeout=30)
        return self._spawn(name, "rabbit", [str(RABBIT_BIN / "rabbitmq-server")], env)



def _connects(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=1).close()
    except OSError:
        return False
    return True
