"""Redis Sentinel URLs: parsed as kombu parses them, refused at settings load when wrong, and
turned into a Sentinel-managed client (no server needed: redis-py connects lazily)."""

from __future__ import annotations

from types import SimpleNamespace

import pydantic
import pytest
import redis
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.sentinel import SentinelConnectionPool

from producer.core.broker import celery_config
from producer.core.fleet import mask_url
from producer.core.settings import Settings, describe_settings_error
from producer.core.store import redis_client, sentinel_url

URL = "sentinel://:pw@s1:26380/2;sentinel://s2;sentinel://s3:26382/2"


def test_every_part_is_a_sentinel_and_the_first_gives_database_and_credentials():
    address = sentinel_url.parse(URL)
    assert address.nodes == (("s1", 26380), ("s2", 26379), ("s3", 26382))
    assert (address.db, address.username, address.password) == (2, None, "pw")
    assert sentinel_url.parse("sentinel://h").db == 0


@pytest.mark.parametrize(("url", "rule"), [
    ("sentinel://s1;redis://s2", "part 2 must start with sentinel://"),
    ("sentinel://:26379", "part 1 names no host"),
    ("sentinel://s1:port", "part 1: the port must be a number"),
    ("sentinel://s1/zero", "part 1: the database after '/' must be a number"),
    ("sentinel://s1/0;sentinel://s2/1", "part 2 names database 1 but part 1 uses 0"),
])
def test_a_malformed_url_names_the_part_and_the_rule(url: str, rule: str):
    with pytest.raises(ValueError, match=rule):
        sentinel_url.parse(url)


def _errors(**values: str) -> list[tuple[tuple, str]]:
    with pytest.raises(pydantic.ValidationError) as caught:
        Settings(**values)
    return [(e["loc"], e["msg"]) for e in caught.value.errors()]


def test_settings_refuse_a_sentinel_url_without_a_master_name_or_malformed():
    [(loc, msg)] = _errors(broker_url="sentinel://s1;sentinel://s2")
    assert "sentinel_master: required when SONGQUEUE_BROKER_URL or SONGQUEUE_REDIS_URL" in msg
    [(loc, msg)] = _errors(redis_url="sentinel://s1:x", sentinel_master="m")
    assert loc == ("redis_url",) and "the port must be a number" in msg
    [(loc, msg)] = _errors(redis_url="http://r:6379")
    assert loc == ("redis_url",) and "must start with redis://, rediss://, unix://, sentinel:// or redis-cluster://" in msg
    [(loc, msg)] = _errors(broker_url="sentinel://s1/0;sentinel://s2/3", sentinel_master="m")
    assert loc == ("broker_url",)


def test_a_settings_error_names_the_variable_and_never_quotes_the_url():
    with pytest.raises(pydantic.ValidationError) as caught:
        Settings(broker_url="sentinel://:secret@s1:x", redis_url="ftp://u:secret@r")
    text = describe_settings_error(caught.value)
    assert text.splitlines() == [
        "  SONGQUEUE_BROKER_URL: part 1: the port must be a number from 1 to 65535 "
        "(sentinel://[USER:PASSWORD@]HOST[:PORT][/DB] with one part per sentinel, joined by ';')",
        "  SONGQUEUE_REDIS_URL: must start with redis://, rediss://, unix://, sentinel:// or redis-cluster:// "
        "(or be empty: the broker's)",
    ]
    with pytest.raises(pydantic.ValidationError) as caught:
        Settings(broker_url="sentinel://:secret@s1")
    assert describe_settings_error(caught.value).startswith("  SONGQUEUE_SENTINEL_MASTER: required when")


def test_the_job_store_follows_a_sentinel_broker_and_kombu_gets_the_master_name():
    settings = Settings(broker_url=URL, sentinel_master="mymaster")
    assert settings.job_store_url == URL
    options = celery_config(settings)["broker_transport_options"]
    assert options["master_name"] == "mymaster" and options["socket_timeout"] > 0
    assert "master_name" not in celery_config(Settings(broker_url="redis://r/0"))["broker_transport_options"]


def test_the_client_asks_the_sentinels_for_the_named_master():
    client = redis_client.connect(URL, "mymaster", socket_timeout=3)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "mymaster"
    assert pool.connection_kwargs["db"] == 2 and pool.connection_kwargs["password"] == "pw"
    assert [(s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
            for s in pool.sentinel_manager.sentinels] == [("s1", 26380), ("s2", 26379), ("s3", 26382)]
    assert isinstance(redis_client.connect_async(URL, "mymaster").connection_pool, AsyncSentinelPool)
    assert not isinstance(redis_client.connect("redis://r:6379/0").connection_pool, SentinelConnectionPool)
    with pytest.raises(ValueError, match="sentinel_master"):
        redis_client.connect(URL, "")


def test_every_part_of_a_sentinel_url_is_masked():
    assert mask_url(URL) == "sentinel://:****@s1:26380/2;sentinel://s2;sentinel://s3:26382/2"


def test_an_ack_on_a_channel_closed_by_a_lost_connection_is_a_connection_error():
    from workers import redis_transport

    closed_transport = SimpleNamespace(client=None)  # what kombu leaves once the transport closed
    for channel_class in (redis_transport.Channel, redis_transport.SentinelChannel):
        for connection in (None, closed_transport):
            channel = object.__new__(channel_class)
            channel.connection = connection
            with pytest.raises(redis.ConnectionError):
                channel._get_pool()


def test_a_write_waits_for_replicas_only_when_asked_and_says_how_many_hold_it(redis_client, key_prefix):
    from producer.core.store.replication import replicated

    assert replicated(redis_client, key_prefix, 0) is None  # not asked: no WAIT, no probe
    assert not redis_client.exists(f"{key_prefix}:replication-probe")
    # This Redis has no replica: a WAIT for one times out and reports 0 of 1.
    assert replicated(redis_client, key_prefix, 1, timeout=0.05) == 0
    assert redis_client.pttl(f"{key_prefix}:replication-probe") > 0  # the probe expires
