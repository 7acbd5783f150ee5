"""The poll schedule learns from finished jobs (workers/poll_learning.py), end to end:
real Redis, a real worker, the sandbox over HTTP."""

from __future__ import annotations

import uuid

import pytest

from producer.core.models.job_record import JobState
from producer.core.store import keys

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("broker", ["redis"], indirect=True)]

GEN = 4.0


def _prompt(text: str, **directives: str) -> str:
    return " ".join([f"{text} {uuid.uuid4().hex[:8]}", *(f"sandbox:{k}={v}" for k, v in directives.items())])


def test_finished_jobs_teach_the_schedule_and_the_next_job_waits_for_them(make_stack, sandbox):
    s = make_stack(poll_learning_min_jobs="3")
    # One pool process: it taught the schedule, so it reads the lesson at once (no cache wait).
    s.start_worker(concurrency=1)
    queue = s.queue()
    warm = [queue.submit({"prompt": _prompt("warm", gen_time=str(GEN))}).id for _ in range(3)]
    records = [queue.wait(job_id, timeout=60) for job_id in warm]
    assert all(r.state is JobState.SUCCEEDED for r in records)

    store = queue.store
    durations = store.redis.lrange(keys.poll_durations(store.prefix, "udio", records[0].model), 0, -1)
    errors = store.redis.lrange(keys.poll_progress_errors(store.prefix, "udio"), 0, -1)
    assert len(durations) == 3 and all(float(d) > 0 for d in durations)
    assert len(errors) == 3  # linear progress: each job had a prediction to check

    # Learned: no job of this model finished before ~4 s, so the next job's first poll
    # waits for the first quantile instead of POLL_INITIAL_DELAY (0.5 s here). A countdown
    # never runs early, so this lower bound holds however loaded the machine is.
    learned_first = sorted(float(d) for d in durations)[0]
    record = queue.wait(queue.submit({"prompt": _prompt("learned", gen_time=str(GEN), progress="stuck")}).id,
                        timeout=60)
    assert record.state is JobState.SUCCEEDED
    first_poll = next(t.at for t in record.transitions if t.state in (JobState.GENERATING, JobState.DOWNLOADING))
    assert first_poll - record.submitted_at >= min(learned_first, GEN) * 0.75
