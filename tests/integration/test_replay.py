"""`songqueue retry JOB_ID`: a FAILED or TIMED_OUT job runs again, on explicit request only."""

from __future__ import annotations

import uuid

import pytest

from producer.core.models.job_record import JobState

pytestmark = pytest.mark.integration


def test_retry_replays_a_failed_job_and_refuses_other_states(make_stack, sandbox):
    s = make_stack()
    s.start_worker(concurrency=2)
    queue = s.queue()
    tag = uuid.uuid4().hex[:8]
    failing = f"replay fails {tag} sandbox:failure"
    job = queue.submit({"prompt": failing}).id
    first = queue.wait(job, timeout=60)
    assert first.state == JobState.FAILED and first.error.code == "upstream_failure"

    retried = s.cli("retry", job)
    assert retried.returncode == 0, retried.stderr
    assert f"job {job}: QUEUED again (run 2" in retried.stdout
    second = queue.wait(job, timeout=60)

    assert second.state == JobState.FAILED and second.error.code == "upstream_failure"
    # Exactly one more paid submit: the sandbox counts submits per prompt.
    assert sandbox.stats()["submits_by_prompt"][failing] == 2
    assert second.upstream_task_id and second.upstream_task_id != first.upstream_task_id
    assert len(second.history) == 1
    run = second.history[0]
    assert run.state == JobState.FAILED and run.upstream_task_id == first.upstream_task_id
    assert run.error == first.error and run.submitted_at == first.submitted_at
    assert second.token == first.token + 1
    assert [t.state for t in second.transitions].count(JobState.QUEUED) == 2
    shown = s.cli("status", job).stdout
    assert f"run 1: FAILED, upstream task {first.upstream_task_id}  upstream_failure:" in shown, shown

    # Only an explicit retry submits again: nothing more happened on its own.
    assert queue.status(job).state == JobState.FAILED and sandbox.stats()["submits_by_prompt"][failing] == 2

    ok = queue.submit({"prompt": f"replay ok {tag}"}).id
    assert queue.wait(ok, timeout=60).state == JobState.SUCCEEDED
    refused = s.cli("retry", ok)
    assert refused.returncode == 2
    assert f"job {ok} is SUCCEEDED: only a FAILED or TIMED_OUT job can be retried" in refused.stderr
    assert queue.status(ok).history == []
    unknown = s.cli("retry", "no-such-job")
    assert unknown.returncode == 2 and "no job no-such-job" in unknown.stderr
