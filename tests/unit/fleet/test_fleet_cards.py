"""Worker cards (producer/core/fleet.py): what each worker runs with, never its keys; read
back by doctor and the metrics."""

from __future__ import annotations

import json

import redis

from producer.core import fleet
from producer.core.settings import Settings
from workers import fleet_card


def _card(settings: Settings, worker: str = "celery@a", queues: tuple[str, ...] = ("submit", "poll")) -> fleet.WorkerCard:
    return fleet_card.build(settings, worker, list(queues))


def test_a_card_carries_fingerprints_and_masked_urls_never_a_secret(redis_client: redis.Redis, key_prefix: str):
    settings = Settings(udio_api_key="udio-secret-1", suno_api_key="", broker_url="redis://:brokerpw@h:6379/0",
                        key_prefix=key_prefix)
    fleet.publish(redis_client, key_prefix, _card(settings), ttl=30)
    raw = redis_client.get(fleet.card_key(key_prefix, "celery@a")).decode()
    assert "udio-secret-1" not in raw and "brokerpw" not in raw
    [card] = fleet.read_all(redis_client, key_prefix)
    assert card.providers["udio"].key == fleet.fingerprint("udio-secret-1") != fleet.fingerprint("udio-secret-2")
    assert card.unservable() == ["minimax", "suno"] and card.broker == "redis://:****@h:6379/0"
    assert json.loads(raw)["queues"] == ["poll", "submit"]


def test_a_card_expires_unless_refreshed(redis_client: redis.Redis, key_prefix: str):
    fleet.publish(redis_client, key_prefix, _card(Settings(key_prefix=key_prefix)), ttl=30)
    assert 0 < redis_client.pttl(fleet.card_key(key_prefix, "celery@a")) <= 30_000
    fleet.withdraw(redis_client, key_prefix, "celery@a")
    assert fleet.read_all(redis_client, key_prefix) == []


def test_the_exporter_reports_each_worker_and_what_it_cannot_serve(redis_client: redis.Redis, key_prefix: str,
                                                                   redis_url: str):
    from producer.client.songqueue import SongQueue
    from producer.ops.metrics import SongqueueCollector

    settings = Settings(udio_api_key="k", suno_api_key="k", minimax_api_key="", key_prefix=key_prefix,
                        broker_url=redis_url, redis_url=redis_url)
    fleet.publish(redis_client, key_prefix, _card(settings, "celery@a"), ttl=30)
    fleet.publish(redis_client, key_prefix, _card(settings, "celery@b"), ttl=30)
    families = {f.name: f for f in SongqueueCollector(SongQueue(settings))._fleet()}
    assert {s.labels["worker"] for s in families["songqueue_worker_up"].samples} == {"celery@a", "celery@b"}
    cannot = {(s.labels["worker"], s.labels["provider"]) for s in families["songqueue_worker_can_serve"].samples
              if s.value == 0}
    assert cannot == {("celery@a", "minimax"), ("celery@b", "minimax")}
    assert families["songqueue_workers"].samples[0].value == 2
