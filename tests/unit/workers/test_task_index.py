"""The notify hook's index, upstream task id -> job (producer/core/store/keys.py `upstream_task`),
is written before the record names the task (workers/steps/paid.py `record_task`): a hook that
comes as soon as anyone can read the task id on the job finds the job, instead of a 404.

Uses the private redis-server of conftest (`redis_client`) with a key prefix of its own.
"""

from __future__ import annotations

import uuid

import pytest
import redis

from producer.core import task_names
from producer.core.models.job_record import JobRecord, JobState
from producer.core.settings import Settings
from producer.core.store.job_store import JobStore
from tests.support.job_paths import walk
from workers import runtime
from workers.steps import paid


def test_the_index_is_written_before_the_record_names_the_task(redis_client: redis.Redis, key_prefix: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store = JobStore(redis_client, key_prefix)
    settings = Settings(key_prefix=key_prefix, notify_hook_url="https://hooks.example/hooks/udio")
    monkeypatch.setattr(runtime, "store", lambda: store)
    monkeypatch.setattr(runtime, "settings", lambda: settings)
    sent: list[tuple[object, ...]] = []
    monkeypatch.setattr(paid, "send", lambda *args, **kwargs: sent.append(args))  # no broker here
    created, _ = store.create(JobRecord(id=uuid.uuid4().hex, provider="udio", model="udio32-v1.5", request={}))
    record = walk(store, created.id, JobState.SUBMITTING)

    # What the hook would find at the moment the record's write is made.
    found_at_write: list[str | None] = []
    write = store.apply

    def apply(*args: object, **kwargs: object) -> JobRecord | None:
        found_at_write.append(store.job_for_upstream_task("udio", "task-1"))
        return write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "apply", apply)

    paid.record_task(record, "task-1", 0.0, None)

    assert found_at_write == [record.id]
    stored = store.get(record.id)
    assert stored is not None and stored.state is JobState.SUBMITTED and stored.upstream_task_id == "task-1"
    assert [args[:2] for args in sent] == [(task_names.POLL, record.id)]
