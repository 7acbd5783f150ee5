"""The watchdog acts only on a job that is still overdue when it reads it
(workers/tasks/watchdog.py `watchdog_round`, JobStore.get_with_due).

Found by the 100,000-job run: the workers came back after the jobs had waited longer than the
watchdog's grace, and the first round listed queued jobs as overdue while the first submits
took them. One job was read after its submit had written the intent (SUBMITTING, with a new
deadline) and was failed as an uncertain submit while its paid call was answered. Here the
submit's intent is written exactly there: after the round has listed the job, before it reads it.

Uses the private redis-server of conftest (`redis_client`) with a key prefix of its own.
"""

from __future__ import annotations

import uuid

import pytest
import redis

from producer.core.models.job_record import JobRecord, JobState
from producer.core.settings import Settings
from producer.core.store.job_store import JobStore
from workers import runtime
from workers.tasks import watchdog


@pytest.mark.parametrize("uncertain_submit", ["fail", "resubmit"])
def test_a_job_moved_on_after_the_round_listed_it_is_left_to_its_step(
        redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch, uncertain_submit: str) -> None:
    store = JobStore(redis_client, key_prefix)
    settings = Settings(key_prefix=key_prefix, uncertain_submit=uncertain_submit)
    monkeypatch.setattr(runtime, "store", lambda: store)
    monkeypatch.setattr(runtime, "settings", lambda: settings)
    sent: list[tuple[object, ...]] = []
    monkeypatch.setattr(watchdog, "send", lambda *args, **kwargs: sent.append(args))  # no broker here
    # Queued longer than the grace: its deadline has passed.
    job, _ = store.create(JobRecord(id=uuid.uuid4().hex, provider="udio", model="udio32-v1.5",
                                    request={"prompt": "p"}), check_in=-1)

    listed = store.overdue
    seen: list[list[str]] = []
    intents: list[JobRecord | None] = []

    def overdue_while_a_submit_starts(now: float, limit: int = 500) -> list[str]:
        ids = listed(now, limit)
        seen.append(ids)
        # Meanwhile a pool child takes the job's submit message and writes its intent, with the
        # deadline the submit step gives it (the paid call's timeout plus the grace).
        intents.append(store.apply(job.id, {JobState.QUEUED}, to=JobState.SUBMITTING, check_in=60))
        return ids

    monkeypatch.setattr(store, "overdue", overdue_while_a_submit_starts)
    watchdog.watchdog_round()

    assert seen and job.id in seen[0], "the round listed the job as overdue"
    intent = intents[0]
    assert intent is not None and intent.state is JobState.SUBMITTING, "the submit's intent was written"
    after = store.get(job.id)
    assert after is not None
    assert (after.state, after.token, after.version) == (JobState.SUBMITTING, intent.token, intent.version)
    assert sent == []
