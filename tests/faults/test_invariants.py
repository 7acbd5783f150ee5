"""The fault rows' invariant checks catch what they claim to: each broken on purpose.

A real Redis (conftest's private one) and real files; no workers: a job is written the
way the job store writes it, then one thing about it is made wrong at a time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import redis

from producer import Settings
from producer.core.models.job_record import JobRecord, JobState, SongRecord, StoredObject
from producer.core.store import keys, spend
from producer.core.store.job_store import JobStore
from tests.faults import invariants
from tests.support.job_paths import walk

PRICE = 0.25
TEXT = "a calm piano piece"


@pytest.fixture
def job(redis_client: redis.Redis, key_prefix: str, tmp_path: Path) -> tuple[JobStore, Settings, JobRecord]:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", key_prefix=key_prefix, udio_price_per_call=PRICE,
                        storage_url=tmp_path.as_uri())
    store = JobStore(redis_client, key_prefix)
    record, _ = store.create(JobRecord(id="j1", provider="udio", model="udio32-v1.5", request={"prompt": TEXT},
                                       callback_url="http://127.0.0.1:9/cb"))
    mp3 = tmp_path / "jobs" / "j1" / "song-1.mp3"
    mp3.parent.mkdir(parents=True)
    mp3.write_bytes(b"ID3 not really audio")

    def finish(r: JobRecord) -> None:
        r.cost = PRICE
        r.upstream_task_id = "task-1"
        r.songs = [SongRecord(upstream_id="s1", song_path="x", audio=StoredObject(
            uri=mp3.as_uri(), key="jobs/j1/song-1.mp3", size=mp3.stat().st_size,
            sha256=hashlib.sha256(mp3.read_bytes()).hexdigest(), content_type="audio/mpeg"))]
        r.manifest = r.songs[0].audio  # stands in for manifest.json: one more object with its sha256

    done = walk(store, "j1", JobState.SUCCEEDED, mutate=finish)
    assert done is not None
    redis_client.incrby(keys.spend(key_prefix, "udio", spend.utc_day()), spend.to_micros(PRICE))
    return store, settings, done


def _check(store: JobStore, settings: Settings, record: JobRecord, billed: int = 1,
           callbacks: list | None = None) -> invariants.Findings:
    got = [{"id": record.id, "state": record.state.value, "event": "job.succeeded"}] if callbacks is None else callbacks
    return invariants.check(store.redis, store.prefix, settings, [store.get(record.id) or record], {record.id: TEXT},
                            {"submits_by_prompt": {TEXT: billed}}, "submits_by_prompt", got)


def test_a_job_that_ended_right_holds_every_invariant(job) -> None:
    found = _check(*job)
    assert found.broken == [] and found.submitted_twice == 0 and found.paid_but_forgotten == 0


def test_two_paid_submits_break_it(job) -> None:
    found = _check(*job, billed=2)
    assert found.submitted_twice == 1 and found.paid_but_forgotten == 1
    assert any("2 paid submits" in b for b in found.broken)


def test_bytes_that_do_not_match_their_sha256(job, tmp_path: Path) -> None:
    (tmp_path / "jobs" / "j1" / "song-1.mp3").write_bytes(b"other bytes")
    assert any("do not match its sha256" in b for b in _check(*job).broken)


def test_a_file_without_a_sha256_on_the_record(job, tmp_path: Path) -> None:
    (tmp_path / "jobs" / "j1" / "song-2.mp3").write_bytes(b"stray")
    assert any("song-2.mp3 is stored without a sha256" in b for b in _check(*job).broken)


def test_a_missing_terminal_callback(job) -> None:
    assert any("never got its terminal event" in b for b in _check(*job, callbacks=[]).broken)


def test_an_index_that_disagrees(job) -> None:
    store, _, record = job
    store.redis.zadd(keys.jobs_in_state(store.prefix, "QUEUED"), {record.id: 1})
    store.redis.zadd(keys.due(store.prefix), {record.id: 1})
    broken = _check(*job).broken
    assert any("state index QUEUED lists it" in b for b in broken)
    assert any("due set still lists it" in b for b in broken)


def test_a_ledger_that_disagrees_with_the_costs(job) -> None:
    store, _, _ = job
    store.redis.incrby(keys.spend(store.prefix, "udio", spend.utc_day()), spend.to_micros(PRICE))
    assert any("spend ledger 0.5 != sum of job costs 0.25" in b for b in _check(*job).broken)


def test_an_uncertain_submit_may_cost_one_call_the_upstream_did_not_bill(job) -> None:
    store, settings, record = job
    record.attempts["submit"] = 1
    assert invariants.cost_bounds(settings, record, billed=0) == (0.0, PRICE)
    assert invariants.cost_bounds(settings, record, billed=1) == (PRICE, PRICE)
