"""RabbitMQ quorum queues (SONGQUEUE_AMQP_QUEUE_TYPE=quorum): jobs go end to end, and a
countdown poll waits in the broker's delayed queues, not in the worker.

Runs on SONGQUEUE_TEST_AMQP_URL (set by .ci/run where RabbitMQ runs), each stack in a vhost
of its own; classic queues are the contrast: there the worker holds the same countdowns.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote, urlparse

import pytest

from producer.core.models.job_record import JobState

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("broker", ["amqp"], indirect=True)]

JOBS = 4
# A message listed by `inspect scheduled` due later than this after the look is held by the
# worker (a countdown's wait), not merely caught between its delivery and its run.
HELD_AHEAD = 2.0
GEN_TIME = 14  # seconds of sandbox generation: long enough for a first poll to wait in the broker
FIRST_POLL = 6  # SONGQUEUE_POLL_INITIAL_DELAY: the countdown the test catches in flight


def _vhost(broker_url: str) -> str:
    return unquote(urlparse(broker_url).path.lstrip("/"))


def _queues(vhost: str) -> dict[str, tuple[str, int]]:
    """{queue name: (type, messages)} in `vhost`, as the broker reports them."""
    out = subprocess.run(["rabbitmqctl", "-q", "--no-table-headers", "list_queues", "-p", vhost,
                          "name", "type", "messages"], check=True, capture_output=True, text=True, timeout=60).stdout
    rows = (line.split("\t") for line in out.splitlines() if line.strip())
    return {name: (kind, int(messages)) for name, kind, messages in rows}


def _delayed(queues: dict[str, tuple[str, int]]) -> int:
    return sum(n for name, (_, n) in queues.items() if name.startswith("celery_delayed_"))


@dataclass
class Sample:
    held_by_broker: int  # messages in the celery_delayed_* queues
    held_by_worker: int  # countdown (ETA) messages the worker holds: `celery inspect scheduled`
    # Of those, the ones due more than HELD_AHEAD seconds after the look: a countdown the
    # worker keeps. The delayed route delivers a message at its ETA, and on a loaded machine
    # the worker may still list it for the moment before it runs; that is not holding it.
    held_ahead: int
    open_jobs: int


def _watch(stack, ids: list[str], deadline: float) -> list[Sample]:
    """Samples of who holds the countdowns until every job ended (or the deadline)."""
    queue = stack.queue()
    vhost = _vhost(stack.env["SONGQUEUE_BROKER_URL"])
    samples: list[Sample] = []
    while time.monotonic() < deadline:
        scheduled = queue.celery.control.inspect(timeout=5, limit=1).scheduled() or {}
        assert scheduled, "the worker did not answer `inspect scheduled`"
        open_jobs = sum(1 for i in ids if not queue.status(i).state.terminal)
        now = time.time()
        etas = [entry.get("eta") for entries in scheduled.values() for entry in entries]
        ahead = sum(1 for eta in etas if eta and datetime.fromisoformat(eta).timestamp() > now + HELD_AHEAD)
        samples.append(Sample(_delayed(_queues(vhost)), len(etas), ahead, open_jobs))
        if open_jobs == 0:
            break
        time.sleep(0.3)  # pacing between looks, not synchronisation: the loop waits on open_jobs
    return samples


def _run_jobs(make_stack, queue_type: str) -> tuple[object, list[str], list[Sample]]:
    s = make_stack(amqp_queue_type=queue_type, poll_initial_delay=str(FIRST_POLL), poll_min_interval="2")
    s.start_worker(concurrency=2)
    queue = s.queue()
    ids = [queue.submit({"prompt": f"tides {uuid.uuid4().hex[:8]} sandbox:gen_time={GEN_TIME}"}).id
           for _ in range(JOBS)]
    samples = _watch(s, ids, time.monotonic() + 180)
    return s, ids, samples


def test_quorum_queues_keep_countdowns_in_the_broker(make_stack, sandbox):
    s, ids, samples = _run_jobs(make_stack, "quorum")
    queue = s.queue()

    records = [queue.status(i) for i in ids]
    assert [r.state for r in records] == [JobState.SUCCEEDED] * JOBS, [r.error for r in records]
    assert all(r.attempts.get("poll", 0) >= 1 for r in records)  # each job was polled by countdown
    queues = _queues(_vhost(s.env["SONGQUEUE_BROKER_URL"]))
    assert {name: queues[name][0] for name in ("submit", "poll", "download", "callback")} == dict.fromkeys(
        ("submit", "poll", "download", "callback"), "quorum")
    assert {f"celery_delayed_{level}" for level in range(28)} <= set(queues)
    # The countdowns were in flight, in the broker (the fault of holding them landed there)...
    assert max(x.held_by_broker for x in samples) >= JOBS, samples
    # ...and never in the worker: it holds no countdown at any look (nothing due later
    # than HELD_AHEAD seconds after it).
    assert max(x.held_ahead for x in samples) == 0, samples


def test_classic_queues_hold_the_same_countdowns_in_the_worker(make_stack, sandbox):
    """The contrast that shows the quorum test can fail: classic queues, same jobs."""
    s, ids, samples = _run_jobs(make_stack, "classic")

    assert [s.queue().status(i).state for i in ids] == [JobState.SUCCEEDED] * JOBS
    assert max(x.held_by_worker for x in samples) >= 1, samples
    assert max(x.held_ahead for x in samples) >= 1, samples  # the quorum test's measure sees them too
    assert not any(name.startswith("celery_delayed_") for name in _queues(_vhost(s.env["SONGQUEUE_BROKER_URL"])))
