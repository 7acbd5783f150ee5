"""The due set of batch polling, on a real Redis: joining, claiming, the drainer's role."""

from __future__ import annotations

import uuid

from producer.core.store import poll_due


def _key() -> str:
    return f"t{uuid.uuid4().hex[:8]}:polldue:suno"


def test_nothing_is_claimed_until_a_job_is_due_then_the_whole_window_is(redis_client) -> None:
    key = _key()
    for job, due in (("a", 104.0), ("b", 108.0), ("c", 111.0)):
        poll_due.schedule(redis_client, key, job, due)
    # Nobody due at 100: no call, even though a and b are within the window.
    assert poll_due.claim(redis_client, key, now=100.0, window=10.0, size=10, lease=30.0) == []
    claimed = poll_due.claim(redis_client, key, now=104.0, window=5.0, size=10, lease=30.0)
    assert claimed == ["a", "b"]  # c is due after the window
    # Claimed jobs are in flight until the lease, out of the due set.
    assert redis_client.zrange(key, 0, -1) == [b"c"]
    assert redis_client.zscore(f"{key}:inflight", "a") == 134.0


def test_batch_size_bounds_the_claim_longest_overdue_first(redis_client) -> None:
    key = _key()
    for i in range(10):
        poll_due.schedule(redis_client, key, f"o{i}", 50.0 + i)
    assert poll_due.claim(redis_client, key, now=100.0, window=0.0, size=4, lease=30.0) == ["o0", "o1", "o2", "o3"]
    assert poll_due.claim(redis_client, key, now=100.0, window=0.0, size=4, lease=30.0) == ["o4", "o5", "o6", "o7"]


def test_a_lapsed_claim_is_due_again_and_a_scheduled_job_leaves_flight(redis_client) -> None:
    key = _key()
    poll_due.schedule(redis_client, key, "dead", 10.0)
    poll_due.schedule(redis_client, key, "alive", 10.0)
    assert sorted(poll_due.claim(redis_client, key, now=10.0, window=0.0, size=10, lease=30.0)) == ["alive", "dead"]
    poll_due.schedule(redis_client, key, "alive", 70.0)  # its answer was applied
    assert redis_client.zscore(f"{key}:inflight", "alive") is None
    # The drainer holding "dead" died: after the lease it is claimed again.
    assert poll_due.claim(redis_client, key, now=39.0, window=0.0, size=10, lease=30.0) == []
    assert poll_due.claim(redis_client, key, now=41.0, window=0.0, size=10, lease=30.0) == ["dead"]
    poll_due.drop(redis_client, key, "dead")
    poll_due.drop(redis_client, key, "alive")
    assert redis_client.exists(key, f"{key}:inflight") == 0


def test_join_marks_due_once_and_elects_one_drainer(redis_client) -> None:
    key = _key()
    assert poll_due.join(redis_client, key, "j1", now=100.0, token="t1", ttl=60.0) is True
    assert poll_due.join(redis_client, key, "j2", now=101.0, token="t2", ttl=60.0) is False  # t1 drains
    poll_due.schedule(redis_client, key, "j1", 130.0)
    poll_due.join(redis_client, key, "j1", now=102.0, token="t3", ttl=60.0)  # a resent poll keeps its due time
    assert redis_client.zscore(key, "j1") == 130.0 and redis_client.zscore(key, "j2") == 101.0
    assert poll_due.turn(redis_client, key, "t2", ttl=60.0) == poll_due.REPLACED
    assert poll_due.turn(redis_client, key, "t1", ttl=60.0) == poll_due.STILL_DRAINER
    poll_due.drop(redis_client, key, "j1")
    poll_due.drop(redis_client, key, "j2")
    assert poll_due.turn(redis_client, key, "t1", ttl=60.0) == poll_due.STEPPED_DOWN
    assert poll_due.join(redis_client, key, "j3", now=103.0, token="t4", ttl=60.0) is True  # a new drainer
