"""kombu's Redis transport, made to survive a restart of Redis.

After a lost connection, kombu 5.7 closes the transport before its channel; the
channel's close then tries to restore unacked messages through the closed transport and
raises AttributeError, which Celery treats as unrecoverable: the worker exits (kombu
issue #582 and celery #9250 show the same family of crash). Here that close is allowed to
fail quietly: the consumer reconnects, and messages that were unacked come back through
the broker's visibility timeout or, sooner, through our watchdog.
"""

from __future__ import annotations

import logging

from kombu.transport import redis

log = logging.getLogger("songqueue.redis_transport")


class Channel(redis.Channel):
    def close(self) -> None:
        try:
            super().close()
        except AttributeError as exc:
            log.warning("broker channel closed after a lost connection (%s); reconnecting", exc)


class Transport(redis.Transport):
    Channel = Channel
