"""The broker transport builds one Redis client per channel and pool, not one per message
(kombu's own builds a `redis.Redis` for every publish, ack and event), and builds anew
after a reconnect dropped the pool. Real Redis (the tests' private server)."""

from __future__ import annotations

from kombu import Connection

from workers.redis_transport import Channel


def test_one_client_per_channel_and_a_new_one_after_the_pool_is_dropped(redis_db_url: str) -> None:
    with Connection(redis_db_url, transport="workers.redis_transport:Transport") as conn:
        channel = conn.default_channel
        assert isinstance(channel, Channel)
        first = channel._create_client()
        assert channel._create_client() is first

        # Messages go through the kept client: sent, received and acked.
        queue = conn.SimpleQueue("transport-test")
        for n in range(3):
            queue.put({"n": n})
        got = []
        for _ in range(3):
            message = queue.get(timeout=10)
            got.append(message.payload["n"])
            message.ack()
        assert got == [0, 1, 2] and channel._create_client() is first

        channel._disconnect_pools()  # what a lost connection does
        second = channel._create_client()
        assert second is not first and second.connection_pool is channel._pool
        assert second.ping()
        queue.close()
