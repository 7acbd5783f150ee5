"""A paid call is charged once, however many writes charge it.

The fault report's "Redis SIGKILL (AOF everysec) while SUBMITTING" row once charged a job
0.50 for one billed call at 0.25: when the broker's Redis connection drops, Celery
restores the worker's unacknowledged messages, so a copy of a submit whose paid call is
still in flight runs beside it. The copy finds the intent without a task id and ends the
job `submit_uncertain`, charging the call (its reservation stayed in the spend ledger);
then the original's answer arrives, is kept on the ended job, and was charged again.

Here the copy is sent by hand (the same message, same token) while the sandbox holds the
original's paid call, with a real worker, Redis and sandbox. The call is charged under its
intent's id (workers/steps/ledger.py), so the late answer finds it charged.
"""

from __future__ import annotations

import uuid

import pytest
import stack

from producer.core import task_names

pytestmark = pytest.mark.integration

PRICE = 0.25


def test_a_redelivered_submit_and_the_late_answer_charge_the_call_once(make_stack, sandbox) -> None:
    s = make_stack(udio_price_per_call=str(PRICE), http_timeout="30")
    s.start_worker(concurrency=2)
    queue = s.queue()
    slow_before = sandbox.stats()["faults"].get("submit_slow", 0)
    prompt = f"redelivered {uuid.uuid4().hex[:8]} sandbox:submit_slow=12"  # held long enough under load
    job_id = queue.submit({"prompt": prompt}).id

    # The original's paid call is held by the sandbox: its intent is written.
    stack.wait_until(lambda: sandbox.stats()["faults"].get("submit_slow", 0) > slow_before, 60,
                     "the sandbox to hold the paid call", interval=0.1)
    record = queue.store.get(job_id)
    assert record.state.value == "SUBMITTING" and record.upstream_task_id is None and record.submit_intent_id
    queue.celery.send_task(task_names.SUBMIT, args=[job_id, record.token])  # the restored copy

    # The copy ends the job while the call is still held (the fault landed as intended)...
    ended = stack.wait_until(lambda: (r := queue.store.get(job_id)).state.terminal and r, 60, "the copy to end the job",
                             interval=0.1)
    assert ended.error.code == "submit_uncertain" and ended.upstream_task_id is None
    assert ended.cost == PRICE
    # ...then the original's answer comes and is kept on the ended job, not charged again.
    kept = stack.wait_until(lambda: (r := queue.store.get(job_id)).upstream_task_id and r, 60,
                            "the original's answer kept", interval=0.1)

    assert sandbox.stats()["submits_by_prompt"][prompt] == 1
    assert kept.state.value == "FAILED" and kept.attempts["submit"] == 1
    assert kept.cost == PRICE, f"one billed call charged {kept.cost / PRICE:g} times"
    assert kept.charged_calls == [record.submit_intent_id]
    assert f"upstream accepted it as task {kept.upstream_task_id}" in s.worker_logs()
