"""Redis Cluster job-store URLs: parsed, refused at settings load when wrong (a cluster broker,
a prefix without a hash tag), masked, and turned into a RedisCluster client (no server needed
to build the URL's parts; the client itself is tested on a real cluster in
tests/integration/test_redis_cluster.py)."""

from __future__ import annotations

import pydantic
import pytest

from producer.core.fleet import mask_url
from producer.core.settings import Settings, describe_settings_error
from producer.core.store import cluster_url


def test_the_seed_nodes_and_credentials_are_read_from_the_url():
    address = cluster_url.parse("redis-cluster://u:p%40ss@n1:7000,n2,[::1]:7002/0")
    assert address.nodes == (("n1", 7000), ("n2", 6379), ("::1", 7002))
    assert (address.username, address.password) == ("u", "p@ss")
    assert cluster_url.parse("redis-cluster://n1:7000").password is None


@pytest.mark.parametrize(("url", "rule"), [
    ("redis-cluster://", "node 1 is empty"),
    ("redis-cluster://n1:7000,,n2", "node 2 is empty"),
    ("redis-cluster://n1:port", "node 1: the port must be a number"),
    ("redis-cluster://n1:70000", "node 1: the port must be a number"),
    ("redis-cluster://:7000", "node 1 names no host"),
    ("redis-cluster://n1:7000/3", "a Redis Cluster has only database 0"),
])
def test_a_malformed_url_names_the_node_and_the_rule(url: str, rule: str):
    with pytest.raises(ValueError, match=rule):
        cluster_url.parse(url)


@pytest.mark.parametrize(("prefix", "tag"), [
    ("{songqueue}", "songqueue"), ("sq{prod}", "prod"), ("songqueue", None), ("x{}y", None), ("a{b", None),
])
def test_only_a_non_empty_hash_tag_in_the_prefix_counts(prefix: str, tag: str | None):
    assert cluster_url.hash_tag(prefix) == tag


def _described(**values: str) -> str:
    with pytest.raises(pydantic.ValidationError) as caught:
        Settings(**values)
    return describe_settings_error(caught.value)


def test_settings_refuse_a_cluster_broker_and_a_cluster_job_store_without_a_hash_tag():
    text = _described(broker_url="redis-cluster://:secret@n1:7000")
    assert text.startswith("  SONGQUEUE_BROKER_URL: Celery has no Redis Cluster broker"), text
    text = _described(broker_url="redis://b/0", redis_url="redis-cluster://:secret@n1:7000", key_prefix="songqueue")
    assert text.startswith("  SONGQUEUE_KEY_PREFIX: must hold a hash tag such as {songqueue}"), text
    assert "secret" not in text
    settings = Settings(broker_url="redis://b/0", redis_url="redis-cluster://n1:7000", key_prefix="{songqueue}")
    assert settings.job_store_url == "redis-cluster://n1:7000"


def test_the_password_of_a_cluster_url_is_masked():
    assert mask_url("redis-cluster://:pw@n1:7000,n2:7001/0") == "redis-cluster://:****@n1:7000,n2:7001/0"
    assert mask_url("redis-cluster://u:pw@n1:7000") == "redis-cluster://u:****@n1:7000"
    assert mask_url("redis-cluster://n1:7000,n2:7001") == "redis-cluster://n1:7000,n2:7001"
