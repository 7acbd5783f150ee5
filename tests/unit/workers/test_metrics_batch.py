"""A task run's metric observations go to Redis in one round trip at the run's end
(workers/metrics.py `batched`), whatever way the run ends; outside a run, each at once."""

from __future__ import annotations

import pytest
import redis

from producer.core.store import keys
from producer.core.store.job_store import JobStore
from producer.core.store.metric_schema import DOWNLOADED_BYTES, UPSTREAM_ERRORS
from workers import metrics, runtime
from workers.upstream.errors import TransientError


@pytest.fixture
def store(redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> JobStore:
    job_store = JobStore(redis_client, key_prefix)
    monkeypatch.setattr(runtime, "store", lambda: job_store)
    return job_store


def _pipelines(store: JobStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many pipelines the metrics sent."""
    sent: list[int] = []
    real = store.redis.pipeline

    def pipeline(*args: object, **kwargs: object) -> object:
        sent.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(store.redis, "pipeline", pipeline)
    return sent


def test_a_runs_observations_are_written_together_at_its_end(store: JobStore, monkeypatch) -> None:
    sent = _pipelines(store, monkeypatch)
    downloaded = keys.metric(store.prefix, DOWNLOADED_BYTES)
    with metrics.batched():
        metrics.downloaded("udio", "cover", 10)
        metrics.downloaded("udio", "audio", 1000)
        metrics.downloaded("udio", "audio", 5)
        assert sent == [] and store.redis.hgetall(downloaded) == {}
    assert len(sent) == 1
    assert store.redis.hgetall(downloaded) == {b"udio|cover": b"10", b"udio|audio": b"1005"}
    metrics.downloaded("udio", "cover", 1)  # outside a run: at once
    assert len(sent) == 2 and store.redis.hget(downloaded, "udio|cover") == b"11"


def test_a_run_ended_by_a_fault_still_writes_what_it_observed(store: JobStore) -> None:
    with pytest.raises(TransientError), metrics.batched(), metrics.upstream_call("udio", "fetch"):
        raise TransientError("upstream_unavailable", "HTTP 503")
    errors = store.redis.hgetall(keys.metric(store.prefix, UPSTREAM_ERRORS))
    assert errors == {b"udio|fetch|upstream_unavailable": b"1"}
