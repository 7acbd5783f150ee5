"""The faults a nemesis chooses, each with the proof that it landed and that it healed.

A fault is two steps: `strike` (returns the evidence it landed, or raises) and `heal`
(returns the evidence the cluster is whole again). Between them the run holds the fault
for its duration. A fault whose proof fails raises `DidNotLand`: its row is not counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import redis
import stack

from producer.core.store.redis_client import NoReplicasError
from tests.hosts.cluster import REDIS_HOSTS, REDIS_PORT, SANDBOX_PORT, Cluster
from tests.hosts.netns import qdisc_available
from tests.hosts.rabbit_cluster import AMQP_PORT, DIST_PORT, RABBIT_HOSTS, RabbitCluster, missing_rabbitmq
from tests.hosts.sharded import NODES, SPARE, ShardedCluster


class DidNotLand(AssertionError):
    pass


def _prove(condition: bool, what: str) -> None:
    if not condition:
        raise DidNotLand(what)


@dataclass(frozen=True)
class Fault:
    name: str
    strike: Callable[[Cluster], str]
    heal: Callable[[Cluster], str]
    needs: Callable[[], str | None] = lambda: None  # why this machine cannot inject it (None: it can)
    stores: tuple[str, ...] = ("sentinel",)  # the job-store kinds (Setting.store) it is crossed with


# -- a worker host killed whole, then brought back ------------------------------------------------

def _kill_worker_host(c: Cluster) -> str:
    before = c.host("w1").pids()
    c.net.kill("w1")
    stack.wait_until(lambda: not c.host("w1").pids(), 10, "every process of w1 gone")
    _prove(len(before) >= 3, f"w1 ran {len(before)} processes (a worker and its pool expected)")
    return f"SIGKILLed {len(before)} processes of w1; `ip netns pids` now empty"


def _restart_worker_host(c: Cluster) -> str:
    c.restart("w1")
    return f"w1 back: {len(c.host('w1').pids())} processes, worker ready"


# -- a worker host cut from the gateway / from Redis ----------------------------------------------

def _cut(side: list[str], other: list[str], probe: tuple[str, str, int]) -> Callable[[Cluster], str]:
    def strike(c: Cluster) -> str:
        host, target, port = probe
        _prove(c.host(host).can_connect(c.host(target).address, port), f"{host} reached {target}:{port} before the cut")
        c.net.cut(side, other)
        _prove(not c.host(host).can_connect(c.host(target).address, port),
               f"{host} still reaches {target}:{port} after the cut")
        return f"cut {'+'.join(side)} | {'+'.join(other)}: a connect from {host} to {target}:{port} timed out"
    return strike


def _healer(probe: tuple[str, str, int]) -> Callable[[Cluster], str]:
    def heal(c: Cluster) -> str:
        c.net.heal()
        host, target, port = probe
        stack.wait_until(lambda: c.host(host).can_connect(c.host(target).address, port), 15,
                         f"{host} to reach {target}:{port} again")
        return f"healed: {host} reaches {target}:{port}"
    return heal


TO_GATEWAY = ("w1", "gw", SANDBOX_PORT)
TO_REDIS = ("w1", "r1", REDIS_PORT)


# -- both at once: a worker host cut from Redis, then killed while cut -------------------------------

def _cut_then_kill(c: Cluster) -> str:
    cut = _cut(["w1"], list(REDIS_HOSTS), TO_REDIS)(c)
    return f"{cut}; then {_kill_worker_host(c)}"


def _heal_and_restart(c: Cluster) -> str:
    return f"{_healer(TO_REDIS)(c)}; {_restart_worker_host(c)}"


# -- the Redis master isolated with one worker host: a minority master that keeps writing ---------

MINORITY = ["r1", "w1"]
MAJORITY = ["r2", "r3", "w2"]


def _isolate_master(c: Cluster) -> str:
    offset = int(c.role("r1").get("master_repl_offset", 0))
    c.net.cut(MINORITY, MAJORITY)
    _prove(not c.host("r1").can_connect(c.host("r2").address, REDIS_PORT), "r1 still reaches r2")
    stack.wait_until(lambda: c.master_by("r2") == c.master_by("r3") in ("r2", "r3"), 60,
                     "the majority's sentinels to promote a replica")
    promoted = c.master_by("r2")
    # The minority side goes on: r1 still believes it is master and w1 (which sees only r1's
    # sentinel) writes to it. The proof: r1's replication offset grows after the cut.
    stack.wait_until(lambda: int(c.role("r1").get("master_repl_offset", 0)) > offset, 30,
                     "the minority master r1 to take a write")
    told = (f"r1+w1 cut from r2+r3+w2; sentinels on r2, r3 promoted {promoted}; r1 still "
            f"{c.role('r1').get('role')} and took writes (offset {offset} -> {c.role('r1').get('master_repl_offset')})")
    if c.setting.replicas_to_write:
        # With min-replicas-to-write the minority master must stop taking writes once it has
        # heard from no replica for max-lag seconds: proved by a write of our own refused.
        stack.wait_until(lambda: _refuses_writes(c), c.setting.max_lag + 15,
                         "the minority master r1 to refuse writes (min-replicas-to-write)")
        told += f"; then r1 refused writes (NOREPLICAS) after at most {c.setting.max_lag} s without a replica"
    return told


def _refuses_writes(c: Cluster) -> bool:
    try:
        c.redis("r1").set("nemesis:probe", "1")
    except NoReplicasError:
        return True
    except redis.RedisError:
        return False
    return False


def _rejoin_master(c: Cluster) -> str:
    promoted = c.master_by("r2")
    c.net.heal()
    stack.wait_until(lambda: c.role("r1").get("role") == "slave" and c.role("r1").get("master_host") ==
                     c.host(promoted or "r2").address, 60, f"the old master r1 to rejoin as {promoted}'s replica")
    stack.wait_until(lambda: all(c.master_by(s) == promoted for s in REDIS_HOSTS), 30,
                     f"every sentinel to name {promoted}")
    return f"healed: r1 is {promoted}'s replica, every sentinel names {promoted}"


# -- a slow, lossy link to the gateway --------------------------------------------------------------

NETEM = ("delay", "100ms", "loss", "5%")
# 512 kbit/s with a queue of about 2.3 KB (2 KB burst + 5 ms at the rate): a song download or a
# burst of polls overflows it, and what overflows is dropped, so TCP backs off and resends.
TBF = ("rate", "512kbit", "burst", "2kb", "latency", "5ms")


def _qdisc_missing(kind: str, spec: tuple[str, ...]) -> Callable[[], str | None]:
    def needs() -> str | None:
        if qdisc_available(kind, *spec):
            return None
        return f"the kernel has no sch_{kind} (tc qdisc {kind}: unknown qdisc kind)"
    return needs


def _shape_gateway(kind: str, spec: tuple[str, ...]) -> Callable[[Cluster], str]:
    def strike(c: Cluster) -> str:
        c.net.shape("gw", kind, *spec)
        return f"tc qdisc {kind} {' '.join(spec)} on both ends of gw's link"
    return strike


def _unshape_gateway(c: Cluster) -> str:
    shown = c.net.unshape("gw")
    dropped = sum(int(n) for n in re.findall(r"dropped (\d+)", shown))
    _prove(dropped > 0, f"the qdisc on gw's link dropped nothing: {' '.join(shown.split())}")
    return f"qdiscs removed; they had dropped {dropped} packets on gw's link"


# -- the job store's master on a Redis Cluster: killed, or cut off with a worker ------------------

def _nothing(c: Cluster) -> str:
    return "no fault: the spine under the same run"


def _nothing_to_heal(c: Cluster) -> str:
    return "nothing to heal"


def _promoted(c: ShardedCluster, old: str, asker: str) -> str | None:
    owner = c.slot_owner(asker)
    return owner[0] if owner and owner[0] != old else None


def _sharded(c: Cluster) -> ShardedCluster:
    assert isinstance(c, ShardedCluster), "a Redis Cluster fault on another layout"
    return c


def _kill_store_master(cluster: Cluster) -> str:
    c = _sharded(cluster)
    master, replicas = c.slot_owner() or ("", [])
    before = c.net.kill(master)
    stack.wait_until(lambda: not c.host(master).pids(), 10, f"every process of {master} gone")
    asker = next(n for n in (*NODES, SPARE) if n != master)
    stack.wait_until(lambda: _promoted(c, master, asker) is not None, 60, f"a replica of {master} promoted")
    c.struck = master
    return (f"SIGKILLed {len(before)} processes of {master} (the job store's master; replicas {', '.join(replicas)}); "
            f"{_promoted(c, master, asker)} promoted")


def _restart_store_master(cluster: Cluster) -> str:
    c = _sharded(cluster)
    old = c.struck
    c.restart(old)
    stack.wait_until(lambda: c.role(old).get("role") == "slave" and c.role(old).get("master_link_status") == "up"
                     and c.cluster_ok(old), 60, f"{old} back as a replica in sync")
    owner = c.slot_owner(old)
    return f"{old} back as {owner[0] if owner else '?'}'s replica, cluster_state ok"


def _isolate_store_master(cluster: Cluster) -> str:
    c = _sharded(cluster)
    master, _ = c.slot_owner() or ("", [])
    minority, majority = [master, "w1"], [n for n in (*NODES, SPARE) if n != master] + ["w2"]
    offset = int(c.role(master).get("master_repl_offset", 0))
    c.net.cut(minority, majority)
    _prove(not c.host(master).can_connect(c.host(majority[0]).address, REDIS_PORT),
           f"{master} still reaches {majority[0]}")
    stack.wait_until(lambda: _promoted(c, master, majority[0]) is not None, 60,
                     "the majority to promote a replica of the job store's master")
    c.struck, c.majority = master, tuple(majority)
    told = (f"{'+'.join(minority)} cut from the other nodes and w2; the majority promoted "
            f"{_promoted(c, master, majority[0])}")
    # w1 and the driver still reach the old master; whether it took writes before it noticed
    # it was cut off is what the row measures (ends undone), not a condition of the fault.
    took = int(c.role(master).get("master_repl_offset", 0)) > offset
    told += f"; {master} {'took' if took else 'took no'} writes after the cut"
    stack.wait_until(lambda: not c.cluster_ok(master), 30, f"{master} to see the cluster down on its side")
    return told + f"; then {master} reports cluster_state fail (minority: no writes)"


def _rejoin_store_master(cluster: Cluster) -> str:
    c = _sharded(cluster)
    master, majority = c.struck, c.majority
    promoted = _promoted(c, master, majority[0])
    c.net.heal()
    stack.wait_until(lambda: c.role(master).get("role") == "slave" and c.cluster_ok(master), 60,
                     f"the old master {master} to rejoin as a replica")
    return f"healed: {master} is a replica again ({promoted} serves the slot), cluster_state ok"


# -- RabbitMQ: a node killed and restarted, a node partitioned, a worker host cut from every node ----

def _rabbit(c: Cluster) -> RabbitCluster:
    assert isinstance(c, RabbitCluster), "a RabbitMQ fault on a Redis cluster"
    return c


def _kill_rabbit_node(c: Cluster) -> str:
    r = _rabbit(c)
    # The leader of the queue every in-flight job goes through (a classic queue has none: q1,
    # the node most clients talk to first).
    leader = r.leader("poll")
    r.victim = leader or "q1"
    other = next(h for h in RABBIT_HOSTS if h != r.victim)
    before = r.host(r.victim).pids()
    r.net.kill(r.victim)
    stack.wait_until(lambda: not r.host(r.victim).pids(), 10, f"every process of {r.victim} gone")
    _prove(len(before) >= 2, f"{r.victim} ran {len(before)} processes (epmd and the Erlang VM expected)")
    stack.wait_until(lambda: r.running(other) == set(RABBIT_HOSTS) - {r.victim}, 60,
                     f"rabbit@{other} to list {r.victim} as not running")
    why = "the poll queue's leader" if leader else "no quorum leader: q1"
    return (f"SIGKILLed {len(before)} processes of {r.victim} ({why}), epmd included; `ip netns pids` now empty; "
            f"rabbit@{other} lists running {sorted(r.running(other))}")


def _restart_rabbit_node(c: Cluster) -> str:
    r = _rabbit(c)
    r.restart(r.victim)  # waits until every node lists all three running
    return f"{r.victim} back (same data dir): every node lists {', '.join(RABBIT_HOSTS)} running"


def _partition_rabbit_node(c: Cluster) -> str:
    r = _rabbit(c)
    q1, q2 = r.host("q1"), r.host("q2")
    _prove(q1.can_connect(q2.address, DIST_PORT), "q1 reached q2's distribution port before the cut")
    r.net.cut(["q1"], ["q2", "q3"])
    _prove(not q1.can_connect(q2.address, DIST_PORT), "q1 still reaches q2's distribution port after the cut")
    # pause_minority: q1 sees neither peer once net_ticktime runs out, stops its listeners and
    # closes its clients' connections; q2 and q3 carry on as the majority.
    stack.wait_until(lambda: not r.answers("q1"), 90, "q1 (the minority) to pause: its AMQP port refusing")
    stack.wait_until(lambda: r.running("q2") == {"q2", "q3"}, 60, "q2 to list q2 and q3 as the running nodes")
    return ("cut q1 | q2+q3: a connect from q1 to q2:25672 timed out; q1 paused (pause_minority: its 5672 "
            "refuses the driver); rabbit@q2 lists q2, q3 running")


def _heal_rabbit_partition(c: Cluster) -> str:
    r = _rabbit(c)
    r.net.heal()
    stack.wait_until(lambda: r.answers("q1"), 120, "q1 to resume: its AMQP port answering")
    r.wait_all_running()
    partitions = r.cluster_status("q1").get("partitions")
    _prove(not partitions, f"q1 still reports partitions after the heal: {partitions}")
    return "healed: q1 resumed, every node lists q1, q2, q3 running, no partition reported"


TO_BROKER = ("w1", "q1", AMQP_PORT)


FAULTS = {f.name: f for f in (
    Fault("worker host killed", _kill_worker_host, _restart_worker_host),
    Fault("worker host cut from the gateway", _cut(["w1"], ["gw"], TO_GATEWAY), _healer(TO_GATEWAY)),
    Fault("worker host cut from Redis", _cut(["w1"], list(REDIS_HOSTS), TO_REDIS), _healer(TO_REDIS)),
    Fault("worker host cut from Redis, then killed", _cut_then_kill, _heal_and_restart),
    Fault("Redis master isolated with a worker", _isolate_master, _rejoin_master),
    Fault("gateway link slow and lossy (netem)", _shape_gateway("netem", NETEM), _unshape_gateway,
          _qdisc_missing("netem", NETEM)),
    Fault("gateway link narrow, overflow dropped (tbf)", _shape_gateway("tbf", TBF), _unshape_gateway,
          _qdisc_missing("tbf", TBF)),
    Fault("none (Redis Cluster spine)", _nothing, _nothing_to_heal, stores=("cluster",)),
    Fault("Redis Cluster: job store's master host killed", _kill_store_master, _restart_store_master,
          stores=("cluster",)),
    Fault("Redis Cluster: job store's master isolated with a worker", _isolate_store_master, _rejoin_store_master,
          stores=("cluster",)),
    Fault("RabbitMQ node killed", _kill_rabbit_node, _restart_rabbit_node, missing_rabbitmq, ("rabbit",)),
    Fault("RabbitMQ node partitioned from the other two", _partition_rabbit_node, _heal_rabbit_partition,
          missing_rabbitmq, ("rabbit",)),
    Fault("worker host cut from RabbitMQ", _cut(["w1"], list(RABBIT_HOSTS), TO_BROKER), _healer(TO_BROKER),
          missing_rabbitmq, ("rabbit",)),
)}

