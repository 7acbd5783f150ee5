"""The one place a job-store Redis client is built: a plain URL, or Sentinel.

With a sentinel:// URL (producer/core/store/sentinel_url.py) the client is redis-py's
`Sentinel(...).master_for(master)`: every new connection asks the sentinels where the
master is, and a connection to a master that was demoted is dropped, so after a failover
the next command (redis-py retries a failed one) reaches the new master. Everything that
talks to the job store goes through here: the job store itself (and so the admission
scripts, the watchdog's leases, the playlist and API-key stores, the metrics exporter),
AsyncSongQueue and the doctor.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from producer.core.store import sentinel_url


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
    """A client for `url`; `master` is the Sentinel master name (only read for sentinel:// URLs)."""
    if not sentinel_url.is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    address = sentinel_url.parse(url)
    sentinels = Sentinel(list(address.nodes), **_master_kwargs(address, options))
    return sentinels.master_for(_required(master))


def connect_async(url: str, master: str = "", **options: Any) -> aioredis.Redis:
    """As `connect`, for asyncio (redis.asyncio)."""
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
