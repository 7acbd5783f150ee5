"""The one place a job-store Redis client is built: a plain URL, Sentinel, or Redis Cluster.

With a sentinel:// URL (producer/core/store/sentinel_url.py) the client is redis-py's
`Sentinel(...).master_for(master)`: every new connection asks the sentinels where the
master is, and a connection to a master that was demoted is dropped, so after a failover
the next command (redis-py retries a failed one) reaches the new master. Everything that
talks to the job store goes through here: the job store itself (and so the admission
scripts, the watchdog's leases, the playlist and API-key stores, the metrics exporter),
AsyncSongQueue and the doctor.

With a redis-cluster:// URL (producer/core/store/cluster_url.py) the client is redis-py's
`RedisCluster`: it learns the slot map from the seed nodes and, when a master dies and the
cluster promotes its replica, follows the MOVED replies there. Every job-store key carries
the prefix's hash tag (the settings refuse a prefix without one), so every key, every
script and every MULTI/WATCH transaction is on one slot: one master's.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from producer.core.store import cluster_url, sentinel_url


class NoReplicasError(redis.ConnectionError):
    """The master refuses writes: it has heard from fewer replicas than its own
    `min-replicas-to-write` within `min-replicas-max-lag` (a master cut off from its
    replicas, or one just promoted whose replica is still syncing). redis-py raises that
    as a plain ResponseError, which kombu counts as a channel error: the worker's consumer
    died with "Unrecoverable error" on an ack during a failover (make hosts, the minority
    master row). It is as unavailable as a lost connection and heals the same way: reconnect
    (through the sentinels, to the master that has its replicas) and try again; the job
    store's steps treat it as the transient fault it is."""


# redis-py maps an error reply's first word to its exception class through this table; one
# entry for NOREPLICAS makes every client of this process (job store, broker, API) raise it
# as the connection fault above. Imported by every process that talks to Redis.
redis.connection.DefaultParser.EXCEPTION_CLASSES["NOREPLICAS"] = NoReplicasError


def connect(url: str, master: str = "", **options: Any) -> redis.Redis:
    """A client for `url`; `master` is the Sentinel master name (only read for sentinel:// URLs).

    For a redis-cluster:// URL it is a RedisCluster, typed as the Redis it stands in for: the
    job store uses only what both offer on one slot (see `node_for`)."""
    if cluster_url.is_cluster(url):
        seeds = cluster_url.parse(url)
        cluster = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in seeds.nodes],
                               username=seeds.username, password=seeds.password, **options)
        return cluster
    if not sentinel_url.is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    address = sentinel_url.parse(url)
    sentinels = Sentinel(list(address.nodes), **_master_kwargs(address, options))
    return sentinels.master_for(_required(master))


def connect_async(url: str, master: str = "", **options: Any) -> aioredis.Redis:
    """As `connect`, for asyncio (redis.asyncio)."""
    if cluster_url.is_cluster(url):
        seeds = cluster_url.parse(url)
        options.pop("health_check_interval", None)  # not an option of the asyncio cluster client
        async_cluster = AsyncRedisCluster(startup_nodes=[AsyncClusterNode(h, p) for h, p in seeds.nodes],
                                          username=seeds.username, password=seeds.password, **options)
        return async_cluster
    if not sentinel_url.is_sentinel(url):
        return aioredis.Redis.from_url(url, **options)
    address = sentinel_url.parse(url)
    sentinels = AsyncSentinel(list(address.nodes), **_master_kwargs(address, options))
    return sentinels.master_for(_required(master))


def _master_kwargs(address: sentinel_url.SentinelAddress, options: dict[str, Any]) -> dict[str, Any]:
    # The URL's credentials and database are the master's (and its replicas'), as in kombu.
    # The sentinels themselves get only the socket_* options (redis-py's default), so a
    # sentinel that hangs cannot hang a lookup for longer than a command would.
    return {**options, "db": address.db, "username": address.username, "password": address.password}


def _required(master: str) -> str:
    if not master:
        raise ValueError("sentinel_master: required with a sentinel:// URL (the name the sentinels monitor)")
    return master


def node_for(client: redis.Redis, key: str) -> redis.Redis:
    """The plain client of the node that holds `key`: `client` itself unless it is a
    RedisCluster. For what a RedisCluster does not offer: a connection of one's own
    (`client.client()`, which WAIT needs) and per-server commands (INFO, TIME) that must
    reach the job store's master, not whichever node the cluster client picks."""
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(key)
        return client.get_redis_connection(node)
    return client
