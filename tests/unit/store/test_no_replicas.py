"""A master that refuses writes for lack of replicas (NOREPLICAS) is a connection fault to
every client of ours: the job store's steps retry it, and the broker's consumer reconnects
instead of dying ("Unrecoverable error: ResponseError" on an ack, seen in make hosts)."""

from __future__ import annotations

import pytest
import redis
import stack

from producer.core.store.redis_client import NoReplicasError
from workers import redis_transport


@pytest.fixture
def lonely_master(tmp_path):
    """A private redis-server that wants one replica for every write and has none."""
    proc, url = stack.start_redis(tmp_path / "redis")
    client = redis.Redis.from_url(url)
    client.config_set("min-replicas-to-write", 1)
    yield client
    stack.stop(proc)


def test_a_refused_write_is_a_connection_fault(lonely_master) -> None:
    with pytest.raises(NoReplicasError) as caught:
        lonely_master.set("k", "v")
    assert isinstance(caught.value, redis.ConnectionError)
    assert lonely_master.get("k") is None  # reads still answer; nothing was written


def test_inside_a_transaction_too(lonely_master) -> None:
    pipe = lonely_master.pipeline(transaction=True)
    pipe.zrem("unacked_index", "tag").set("k", "v")
    with pytest.raises(redis.ConnectionError):
        pipe.execute()


def test_the_broker_transports_recover_from_it() -> None:
    for transport in (redis_transport.Transport, redis_transport.SentinelTransport):
        assert issubclass(NoReplicasError, transport.connection_errors)
