"""A job's deadline against real workers and the sandbox: what passing it costs.

Not submitted by then: CANCELLED, and the sandbox never saw a submit (nothing billed).
Submitted: TIMED_OUT, the one billed call kept on the record. Either way the view says
when the ended record expires.
"""

from __future__ import annotations

import uuid

import pytest

from producer.core.models.job_record import JobState

pytestmark = pytest.mark.integration


def _prompt(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def test_a_job_held_behind_a_limit_past_its_deadline_ends_cancelled_uncharged(make_stack, sandbox):
    s = make_stack(udio_max_in_flight="1", job_retention="3600")
    s.start_worker(concurrency=2)
    queue = s.queue()
    # The first job takes the provider's one place for 20 s; the second waits for it.
    holder = queue.submit({"prompt": _prompt("holds the place sandbox:gen_time=20")})
    waiting_prompt = _prompt("wants it within 2 seconds")
    late = queue.submit({"prompt": waiting_prompt}, deadline="2s")
    record = queue.wait(late.id, timeout=40)
    assert record.state is JobState.CANCELLED, record.error
    assert record.error is not None and record.error.code == "deadline_before_submit"
    assert record.cost == 0
    # The fault landed: the holder was at the upstream, the waiting job never was.
    stats = sandbox.stats()
    assert stats["submits_by_prompt"].get(waiting_prompt, 0) == 0
    assert queue.status(holder.id).upstream_task_id is not None
    view = record.public_view()
    assert view["expires_at"] == pytest.approx(record.transitions[-1].at + 3600)
    assert view["deadline"] == record.cancel_after
    queue.cancel(holder.id)


def test_a_submitted_job_past_its_deadline_times_out_with_its_charge_kept(make_stack, sandbox):
    s = make_stack(udio_price_per_call="0.5")
    s.start_worker(concurrency=2)
    queue = s.queue()
    prompt = _prompt("takes a minute sandbox:gen_time=60")
    record = queue.wait(queue.submit({"prompt": prompt}, deadline=3).id, timeout=40)
    assert record.state is JobState.TIMED_OUT, record.error
    assert record.error is not None and record.error.code == "deadline_after_submit"
    assert "charged (0.5)" in record.error.message
    assert sandbox.stats()["submits_by_prompt"][prompt] == 1  # billed once, and kept
    assert record.cost == 0.5 and record.upstream_task_id is not None


def test_a_bad_deadline_is_refused_by_the_cli_before_anything_is_written(make_stack):
    s = make_stack()
    result = s.cli("submit", "--prompt", "never queued", "--deadline", "tomorrow")
    assert result.returncode == 2
    assert "--deadline: must be seconds (90)" in result.stderr
    assert s.queue().store.ids() == []



