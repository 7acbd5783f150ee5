"""SONGQUEUE_REDIS_MIN_REPLICAS: no paid call on a submit intent that only the master holds.

Real worker, Redis and sandbox. This Redis has no replica, so the intent never reaches one:
the worker must back off without calling the upstream (the sandbox counts no submit for
the prompt) and, past its transient-error bound, fail the job with a reason that names
the setting. The probe key the check writes proves the WAIT ran.
"""

from __future__ import annotations

import uuid

import pytest
import redis

pytestmark = pytest.mark.integration


def test_an_intent_no_replica_holds_is_never_paid_for(make_stack, sandbox) -> None:
    s = make_stack(redis_min_replicas="1", max_transient_errors="1")
    s.start_worker()
    queue = s.queue()
    prompt = f"unreplicated {uuid.uuid4().hex[:8]}"

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=90)

    prefix = s.env["SONGQUEUE_KEY_PREFIX"]
    assert redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"]).exists(f"{prefix}:replication-probe")
    assert sandbox.stats()["submits_by_prompt"].get(prompt, 0) == 0
    assert record.state.value == "FAILED", record
    assert record.error.code == "redis_not_replicated"
    assert "0 of SONGQUEUE_REDIS_MIN_REPLICAS=1" in record.error.message
    assert "the upstream was not called" in record.error.message
