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

import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest

from producer.models.job_record import JobState

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
