"""Parked jobs against real workers, Redis and the sandbox (producer/core/store/parking.py).

A job behind its API key's in-flight limit makes no submit task runs while it waits: it is
parked, and the write that frees a place wakes the oldest parked job. Another key's job goes
on meanwhile. A wake lost to a crash is healed by the watchdog, and a parked job with a
deadline still ends CANCELLED at it, never submitted.
"""

from __future__ import annotations

import uuid

import pytest
import stack

from producer.core.models.job_record import JobState
from producer.core.store import keys
from producer.core.store.api_keys import KeyStore

pytestmark = pytest.mark.integration


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def _key(queue, **limits: object) -> tuple[str, str]:
    """A key id and its tenant (jobs are submitted under it as the HTTP API would)."""
    key, _ = KeyStore(queue.store.redis, queue.settings.key_prefix).create(
        f"k{_tag()}", f"t{_tag()}", ["submit", "read"], **limits)
    return key.id, key.tenant


def _submit_runs(built) -> int:
    return sum(1 for line in built.worker_logs().splitlines()
               if "Task songqueue.submit[" in line and ("succeeded" in line or "retry" in line.lower()))


def test_jobs_behind_a_key_limit_are_parked_and_woken_in_order_while_another_key_goes_on(make_stack, sandbox):
    # limit_wait 0.2 s: were the waiting jobs polled, 4 jobs waiting ~6 s would run ~100 times.
    built = make_stack(limit_wait="0.2")
    built.start_worker(concurrency=3)
    queue = built.queue()
    busy, busy_tenant = _key(queue, max_in_flight=1)
    other, other_tenant = _key(queue)
    tag = _tag()
    prompts = [f"parked {tag} {i} sandbox:gen_time=2" for i in range(4)]
    ids = [queue.submit({"prompt": p}, tenant=busy_tenant, api_key=busy).id for p in prompts]
    parked_key = keys.parked(keys.key_in_flight(queue.settings.key_prefix, busy))
    stack.wait_until(lambda: queue.store.redis.zcard(parked_key) == 3, 30, "three jobs parked behind the key")
    runs_when_parked = _submit_runs(built)

    # Another key's job goes from submit to the end while the first key's jobs wait.
    quick = queue.wait(queue.submit({"prompt": f"other {tag}"}, tenant=other_tenant, api_key=other).id, timeout=60)
    assert quick.state is JobState.SUCCEEDED
    assert queue.status(ids[-1]).state is JobState.QUEUED, "the other key's job did not wait behind the parked ones"
    assert queue.status(ids[-1]).waiting_for is not None

    records = [queue.wait(i, timeout=90) for i in ids]
    assert [r.state for r in records] == [JobState.SUCCEEDED] * len(ids)
    assert all(r.waiting_for is None and r.parked is None for r in records)
    # Woken oldest first: after the one that took the place first (the submits raced for it),
    # the parked jobs went in the order they were made.
    submitted = [next(t.at for t in r.transitions if t.state is JobState.SUBMITTING) for r in records]
    first = submitted.index(min(submitted))
    woken = [at for i, at in enumerate(submitted) if i != first]
    assert woken == sorted(woken), submitted
    # While parked, no task ran for them: each parked job ran once to park, once when woken
    # (a woken job whose place was taken meanwhile parks again: one more run at most).
    assert runs_when_parked <= len(ids)
    assert _submit_runs(built) <= 2 * len(ids) + 1 + 2, built.worker_logs()[-3000:]
    assert queue.store.redis.zcard(parked_key) == 0
    assert queue.store.redis.zcard(keys.key_in_flight(queue.settings.key_prefix, busy)) == 0


def test_the_watchdog_wakes_a_parked_job_whose_wake_was_lost(make_stack, sandbox):
    # Parked jobs are looked at every second; a job the watchdog sent is looked at again only
    # after the grace. At 1 s a busy machine's queue held the resent submit past it, and the
    # watchdog rightly sent it a second time (token 2): the count below needs a grace the
    # submit's wait in the queue cannot outlast.
    built = make_stack(watchdog_interval="0.5", parked_check="1", watchdog_grace="10")
    built.start_worker(concurrency=2)
    queue = built.queue()
    key_id, tenant = _key(queue, max_in_flight=1)
    tag = _tag()
    holder = queue.submit({"prompt": f"holder {tag} sandbox:gen_time=3"}, tenant=tenant, api_key=key_id)
    stack.wait_until(lambda: queue.status(holder.id).upstream_task_id, 30, "the first job to hold the place")
    lost = queue.submit({"prompt": f"lost wake {tag}"}, tenant=tenant, api_key=key_id)
    parked_key = keys.parked(keys.key_in_flight(queue.settings.key_prefix, key_id))
    stack.wait_until(lambda: queue.status(lost.id).parked == "key_in_flight", 30, "the second job parked")
    # A third job stays parked behind both: the watchdog looks at it every second while the
    # limit is full and sends nothing (a resend would bump its fencing token).
    kept = queue.submit({"prompt": f"kept parked {tag}"}, tenant=tenant, api_key=key_id)
    stack.wait_until(lambda: queue.status(kept.id).parked == "key_in_flight", 30, "the third job parked")
    # What a crash between the pop and the send leaves: out of the queue, no message.
    assert queue.store.redis.zrem(parked_key, lost.id) == 1
    assert queue.wait(holder.id, timeout=60).state is JobState.SUCCEEDED
    record = queue.wait(lost.id, timeout=60)
    assert record.state is JobState.SUCCEEDED
    assert "parked with no wake coming" in built.worker_logs()
    assert record.token == 1, "resent once by the watchdog"
    kept_record = queue.wait(kept.id, timeout=60)
    assert kept_record.state is JobState.SUCCEEDED
    assert kept_record.token == 0, "woken by the lost job's end, never resent by the watchdog"


def test_a_parked_job_past_its_deadline_ends_cancelled_never_submitted(make_stack, sandbox):
    built = make_stack(watchdog_interval="0.5")
    built.start_worker(concurrency=2)
    queue = built.queue()
    key_id, tenant = _key(queue, max_in_flight=1)
    tag = _tag()
    holder = queue.submit({"prompt": f"holder {tag} sandbox:gen_time=20"}, tenant=tenant, api_key=key_id)
    stack.wait_until(lambda: queue.status(holder.id).upstream_task_id, 30, "the first job to hold the place")
    late_prompt = f"parked with a deadline {tag}"
    late = queue.submit({"prompt": late_prompt}, tenant=tenant, api_key=key_id, deadline="3s")
    record = queue.wait(late.id, timeout=40)
    assert f"job {late.id}: parked: API key {key_id}" in built.worker_logs()
    assert record.state is JobState.CANCELLED
    assert record.error is not None and record.error.code == "deadline_before_submit"
    assert sandbox.stats()["submits_by_prompt"].get(late_prompt, 0) == 0
    queue.cancel(holder.id)
