"""The watchdog and a backed-up queue: an overdue job whose step's queue holds a backlog is
waiting in it, not lost, so it is looked at again later instead of resent (a resend per
round grew a slow queue faster than it drained and sent the job's only valid message to
the back); after MAX_DEFERRALS looks it is resent all the same, so a lost message heals.

Real Redis and a real worker whose watchdog timer runs the rounds; the worker consumes only
the callback queue, so the submit messages stay queued: a backlog that does not drain.
"""

from __future__ import annotations

import uuid

import redis
import stack

from producer.core.models.job_record import JobState
from producer.core.models.udio import UdioRequest
from workers.tasks.watchdog import DEFER_BACKLOG, MAX_DEFERRALS

GRACE = 0.5  # looks at GRACE x 1, 2, 4 ... : the resend comes after about 63 x GRACE


def test_an_overdue_job_behind_a_backlog_is_deferred_then_resent(make_stack):
    s = make_stack(watchdog_interval="0.3", watchdog_grace=str(GRACE))
    queue = s.queue()
    store = queue.store
    broker = redis.Redis.from_url(s.env["SONGQUEUE_BROKER_URL"])
    jobs = DEFER_BACKLOG + 20
    tag = uuid.uuid4().hex[:8]
    ids = [queue.submit(UdioRequest(prompt=f"backlog {tag} {i}", lyrics_type="instrumental")).id
           for i in range(jobs)]
    assert broker.llen("submit") == jobs
    s.start_worker(queues="callback")

    def looks(job_id: str) -> int:
        record = store.get(job_id)
        assert record is not None
        return record.attempts.get("watchdog:QUEUED", 0)

    # The watchdog saw them overdue (the condition this test is about) ...
    stack.wait_until(lambda: all(looks(i) >= 1 for i in ids), 60, "every job deferred once")
    # ... and sent nothing: same tokens, the queue as it was.
    records = [store.get(i) for i in ids]
    assert all(r is not None and r.state == JobState.QUEUED and r.token == 0 for r in records)
    assert broker.llen("submit") == jobs

    # After MAX_DEFERRALS looks the job is resent under a new token: a lost message heals.
    first = ids[0]
    stack.wait_until(lambda: (store.get(first) or records[0]).token >= 1, 180, "the resend after the deferrals")
    resent = store.get(first)
    assert resent is not None and resent.attempts["watchdog:QUEUED"] == MAX_DEFERRALS + 1
    # The new token is written before the message is sent.
    stack.wait_until(lambda: broker.llen("submit") > jobs, 30, "the resent submit message")
