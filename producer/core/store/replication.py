"""A write that must outlive a failover: WAIT until enough replicas hold it.

Redis replicates asynchronously: a write the master acknowledged can be lost if the master
dies before a replica received it and Sentinel promotes that replica. For most writes of
the job store that only repeats work (a step runs again, found by the watchdog). For the
submit intent it could bill twice: an intent lost after the paid call made the job QUEUED
again. So with SONGQUEUE_REDIS_MIN_REPLICAS the submit waits for the intent to reach that
many replicas before it calls (docs/operations.md#redis-sentinel).
"""

from __future__ import annotations

import redis

from producer.core.store.redis_client import node_for

# Seconds a submit waits for its intent to reach the replicas before it backs off and retries.
WAIT_SECONDS = 2.0


def replicated(client: redis.Redis, prefix: str, replicas: int, timeout: float = WAIT_SECONDS) -> int | None:
    """None when `replicas` replicas (0: none needed) hold every write made before this call,
    else how many do.

    WAIT counts the writes of its own connection, and a pool may have sent the write to be
    protected on another. So this connection writes a probe and waits for that: the master
    replicates in one ordered stream, and a replica that acknowledged the probe holds
    everything the master had acknowledged before it.
    """
    if replicas <= 0:
        return None
    probe = f"{prefix}:replication-probe"
    # On Redis Cluster: the master of the prefix's slot, the one holding the intent.
    with node_for(client, probe).client() as pinned:
        pinned.set(probe, "1", px=60_000)
        got = int(pinned.wait(replicas, max(1, int(timeout * 1000))))
    return None if got >= replicas else got
