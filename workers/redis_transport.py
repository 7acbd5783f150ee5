"""kombu's Redis transport, made to survive a restart of Redis and to publish without
building a client per message.

After a lost connection, kombu 5.7 closes the transport before its channel; the
channel's close then tries to restore unacked messages through the closed transport and
raises AttributeError, which Celery treats as unrecoverable: the worker exits (kombu
issue #582 and celery #9250 show the same family of crash). Here that close is allowed to
fail quietly: the consumer reconnects, and messages that were unacked come back through
the broker's visibility timeout or, sooner, through our watchdog. The Sentinel transport
(SONGQUEUE_BROKER_URL=sentinel://...) gets the same fix: a failover is such a lost
connection.

kombu builds a new `redis.Redis` for every publish, ack and event (its `conn_or_acquire`);
redis-py fills about 170 response callbacks in each client's constructor, so that was the
largest single CPU cost of a task run (profiled: 28 % of the worker's main process
with an instant upstream). The client only wraps the channel's connection pool and is
thread-safe, so one per channel and pool serves them all.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis
from redis import exceptions as redis_errors

# Registers a master's NOREPLICAS refusal as a connection fault (one the consumer recovers from).
from producer.core.store import redis_client  # noqa: F401

log = logging.getLogger("songqueue.redis_transport")


class _ChannelFixes:
    """What both of our channels (plain Redis and Sentinel) change in kombu's."""

    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        client = self._sync_client
        # A reconnect drops the pool (kombu's _disconnect_pools): build anew on the new one.
        if client is None or client.connection_pool is not self._pool:  # type: ignore[attr-defined]
            client = self._sync_client = super()._create_client()  # type: ignore[misc]
        return client

    def close(self) -> None:
        self._sync_client = None
        try:
            super().close()  # type: ignore[misc]
        except AttributeError as exc:
            log.warning("broker channel closed after a lost connection (%s); reconnecting", exc)

    def _get_pool(self, asynchronous: bool = False) -> Any:
        # A message taken before the connection was lost is acked on its old, closed
        # channel. Its pool is gone (the Sentinel channel drops it on close), and rebuilding
        # it from a closed channel raises AttributeError, which kills the worker
        # ("Unrecoverable error"). A connection error instead is what Celery expects of a
        # lost broker: it logs that the ack failed and goes on; the message comes back after
        # the visibility timeout and finds its job moved on (a no-op).
        if self.connection is None or self.connection.client is None:  # type: ignore[attr-defined]
            raise redis_errors.ConnectionError("broker channel already closed after a lost connection")
        return super()._get_pool(asynchronous)  # type: ignore[misc]


class Channel(_ChannelFixes, redis.Channel):
    pass


class SentinelChannel(_ChannelFixes, redis.SentinelChannel):
    pass


class Transport(redis.Transport):
    Channel = Channel


class SentinelTransport(redis.SentinelTransport):
    Channel = SentinelChannel
