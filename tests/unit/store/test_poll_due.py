"""The due set of batch polling, on a real Redis: what a poll claims, and what it leaves."""

from __future__ import annotations

import uuid

from producer.store import poll_due


def _key() -> str:
    return f"t{uuid.uuid4().hex[:8]}:polldue:suno"


def test_claims_itself_first_then_others_due_within_the_window(redis_client) -> None:
    key = _key()
    for job, due in (("a", 90.0), ("b", 104.0), ("c", 111.0), ("d", 99.0)):
        poll_due.schedule(redis_client, key, job, due)
    claimed, wait = poll_due.claim(redis_client, key, "j", now=100.0, window=5.0, size=10, lease=30.0)
    assert wait is None
    assert claimed[0] == "j" and sorted(claimed[1:]) == ["a", "b", "d"]  # c is due after the window
    # Every claimed job is pushed a lease ahead, so a dead worker's batch comes due again.
    assert {j: redis_client.zscore(key, j) for j in claimed} == dict.fromkeys(claimed, 130.0)
    assert redis_client.zscore(key, "c") == 111.0


def test_batch_size_bounds_the_claim(redis_client) -> None:
    key = _key()
    for i in range(10):
        poll_due.schedule(redis_client, key, f"o{i}", 50.0 + i)
    claimed, _ = poll_due.claim(redis_client, key, "j", now=100.0, window=0.0, size=4, lease=30.0)
    assert claimed == ["j", "o0", "o1", "o2"]  # the longest overdue first


def test_a_job_fetched_by_another_batch_is_told_when_it_is_due(redis_client) -> None:
    key = _key()
    poll_due.schedule(redis_client, key, "j", 140.0)
    claimed, wait = poll_due.claim(redis_client, key, "j", now=100.0, window=50.0, size=10, lease=30.0)
    assert claimed == [] and wait == 140.0
    poll_due.drop(redis_client, key, "j")
    assert redis_client.zscore(key, "j") is None
