"""Retention: ended jobs and playlist runs leave Redis at ended_at + retention; the sweep
prunes their index entries; the manifest tells an expired job back.

Uses the private redis-server of conftest; every test has its own key prefix.
"""

from __future__ import annotations

import time

import pytest
import redis

from producer.core.models.job_record import JobError, JobRecord, JobState, SongRecord, StoredObject
from producer.core.models.playlist_run import PlaylistRun, RunState
from producer.core.objects.archive import manifest_key, record_from_manifest
from producer.core.store import keys
from producer.core.store.job_store import JobStore
from producer.core.store.playlist_store import PlaylistStore
from producer.core.store.retention import ended_at
from tests.support.job_paths import walk
from workers.artifacts import manifest
from workers.artifacts.manifest import manifest_document

REQUEST = {"prompt": "a song about the moon", "lyrics": "", "config": {"mode": "regular"}}
RETENTION = 1000


@pytest.fixture
def store(redis_client: redis.Redis, key_prefix: str) -> JobStore:
    return JobStore(redis_client, key_prefix, retention=RETENTION)


def _ended(store: JobStore, job_id: str, state: JobState = JobState.FAILED, key: str | None = None) -> JobRecord:
    store.create(JobRecord(id=job_id, provider="udio", model="udio32-v1.5", request=REQUEST, idempotency_key=key))
    return walk(store, job_id, state)


def _expires_at(store: JobStore, key: str) -> int:
    ttl = store.redis.ttl(key)
    assert ttl > 0, f"{key} has no expiry"
    return int(time.time() + ttl)


def test_an_ended_job_and_its_idempotency_key_expire_at_end_plus_retention(store: JobStore) -> None:
    record = _ended(store, "j1", key="order-1")
    deadline = int(ended_at(record) + RETENTION)
    for key in (keys.job(store.prefix, "j1"), keys.idempotency(store.prefix, "order-1")):
        assert abs(_expires_at(store, key) - deadline) <= 1


def test_a_later_write_to_an_ended_job_keeps_its_deadline(store: JobStore) -> None:
    record = _ended(store, "j1")
    deadline = int(ended_at(record) + RETENTION)
    store.apply("j1", {JobState.FAILED}, mutate=lambda r: setattr(r, "progress", 7))
    assert abs(_expires_at(store, keys.job(store.prefix, "j1")) - deadline) <= 1


def test_a_live_job_never_expires_and_a_replayed_one_stops_expiring(store: JobStore) -> None:
    store.create(JobRecord(id="live", provider="udio", model="m", request=REQUEST))
    assert store.redis.ttl(keys.job(store.prefix, "live")) == -1
    _ended(store, "j1", key="k1")
    store.apply("j1", {JobState.FAILED}, to=JobState.QUEUED)
    assert store.redis.ttl(keys.job(store.prefix, "j1")) == -1
    assert store.redis.ttl(keys.idempotency(store.prefix, "k1")) == -1


def test_retention_zero_keeps_everything(redis_client: redis.Redis, key_prefix: str) -> None:
    store = JobStore(redis_client, key_prefix, retention=0)
    _ended(store, "j1", key="k")
    assert store.redis.ttl(keys.job(store.prefix, "j1")) == -1
    assert store.prune_ended(time.time() + 10**9) == 0 and store.ids() == ["j1"]


def test_the_sweep_prunes_only_index_entries_past_retention(store: JobStore) -> None:
    _ended(store, "old", JobState.SUCCEEDED)
    _ended(store, "failed", JobState.CANCELLED)
    store.create(JobRecord(id="live", provider="udio", model="m", request=REQUEST))
    assert store.prune_ended(time.time()) == 0
    assert store.prune_ended(time.time() + RETENTION + 1) == 2
    assert store.ids() == ["live"] and store.ids(JobState.SUCCEEDED) == [] and store.ids(JobState.CANCELLED) == []
    assert store.ids(JobState.QUEUED) == ["live"]


def test_an_ended_playlist_run_expires_and_its_index_entries_are_pruned(redis_client: redis.Redis,
                                                                         key_prefix: str) -> None:
    runs = PlaylistStore(redis_client, key_prefix, retention=RETENTION)
    run = PlaylistRun(id="r1", playlist="evening", album="evening", provider="udio", storage_prefix="p",
                      trigger="manual", requests=[], min_success=0, timeout=60)
    runs.create(run, check_in=60)
    runs.apply("r1", {RunState.CREATING}, to=RunState.SUCCEEDED)
    assert 0 < redis_client.ttl(keys.playlist_run(key_prefix, "r1")) <= RETENTION
    assert runs.prune_ended(time.time()) == 0 and [r.id for r in runs.recent("evening")] == ["r1"]
    assert runs.prune_ended(time.time() + RETENTION + 1) == 1
    assert redis_client.zcard(keys.playlist_runs(key_prefix)) == 0
    assert redis_client.zcard(keys.playlist_runs(key_prefix, "evening")) == 0


def test_manifest_tells_the_job_back() -> None:
    audio = StoredObject(uri="file:///o/jobs/j1/song-1.mp3", key="jobs/j1/song-1.mp3", size=3, sha256="ab",
                         content_type="audio/mpeg")
    record = JobRecord(id="j1", provider="udio", model="udio32-v1.5", request=REQUEST, upstream_task_id="t1",
                       songs=[SongRecord(upstream_id="s1", title="晨光", duration=30.0, audio=audio)])
    record.state = JobState.FAILED
    record.error = JobError(code="download_poison", message="song 2 audio: gave up")
    record.transitions = []
    back = record_from_manifest(manifest_document(record, written_at=record.created_at + 5))
    assert (back.id, back.state, back.error, back.upstream_task_id) == ("j1", JobState.FAILED, record.error, "t1")
    assert back.songs[0].audio == audio and back.songs[0].title == "晨光"
    succeeded = record_from_manifest(manifest_document(record, state=JobState.SUCCEEDED))
    assert succeeded.state == JobState.SUCCEEDED and succeeded.progress == 100
    assert succeeded.transitions[-1].state == JobState.SUCCEEDED


def test_the_producer_finds_the_manifest_where_the_workers_write_it() -> None:
    assert manifest_key("0f3c9a") == manifest.manifest_key("0f3c9a")
    with pytest.raises(ValueError, match="job id"):
        manifest_key("../etc")
