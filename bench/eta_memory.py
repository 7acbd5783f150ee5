"""Worker memory against countdowns waiting: with and without SONGQUEUE_WORKER_ETA_TASK_LIMIT.

Every job in flight has one poll message waiting out its countdown. Celery raises a
worker's prefetch for each countdown (ETA) message it takes, so without a limit one
worker fetches and holds every such message in its main process. This run puts N poll
messages with a one-hour countdown in the poll queue (real task messages of the poll
task, as a job's poll chain sends them; nothing becomes due during the run), starts one
submit+poll worker, waits until it has fetched all it will (the broker's `unacked` count
stops moving), and reads the main process's resident memory. Baseline: the same worker
with an empty queue, in the same run.
"""

from __future__ import annotations

import time
import uuid

import redis

from bench import harness
from bench.harness import Section, fmt
from producer.core import task_names

COUNTDOWN = 3600  # longer than the run: no message becomes due while it is measured


def run(quick: bool) -> Section:
    messages = 2000 if quick else 10000
    rows = []
    with harness.servers("eta-memory") as srv:
        idle = _measure(srv, 0, limit=0)
        rows.append(["empty queue (baseline)", "-", *idle])
        for limit in (0, 1000):
            label = "no limit (`SONGQUEUE_WORKER_ETA_TASK_LIMIT=0`)" if limit == 0 else f"`SONGQUEUE_WORKER_ETA_TASK_LIMIT={limit}`"
            rows.append([label, f"{messages:,}", *_measure(srv, messages, limit)])
    base = rows[0][3]
    table_rows = [[label, sent, f"{held:,}", fmt(rss, 1), fmt(rss - base, 1),
                   fmt((rss - base) * 1024 / held, 2) if held else "-"]
                  for label, sent, held, rss in rows]
    return Section(
        title="Worker memory with countdowns waiting: the ETA limit",
        setup=(f"{messages:,} poll messages with a {COUNTDOWN} s countdown (one per job in flight) in the poll "
               "queue; one worker `-Q submit,poll -c 2` (prefork) starts and fetches what it will; resident memory "
               "(VmRSS) of its main process once the broker's unacked count has stopped moving. Baseline: the "
               "same worker with an empty queue, same run."),
        table=harness.table(["worker", "countdowns queued", "held by the worker", "main RSS MiB",
                             "above baseline MiB", "KiB per held message"], table_rows),
        notes=["Without a limit the worker holds every countdown it is sent, and its memory grows with the jobs "
               "in flight; with the limit it holds at most that many and the rest wait in the broker, so worker "
               "memory is bounded whatever is in flight (the broker's memory grows instead: about one message "
               "each, see the scale table)."],
    )


def _measure(srv: harness.Servers, messages: int, limit: int) -> tuple[int, float]:
    env = srv.env(WORKER_ETA_TASK_LIMIT=limit)
    broker = redis.Redis.from_url(env["SONGQUEUE_BROKER_URL"])
    celery = harness.producer(env).celery
    for _ in range(messages):
        job_id = uuid.uuid4().hex
        celery.send_task(task_names.POLL, args=[job_id, 1], countdown=COUNTDOWN,
                         argsrepr=task_names.argsrepr(job_id, provider="udio"))
    worker = srv.start_worker(env, f"eta-{limit}-{messages}", queues="submit,poll", concurrency=2)
    expected = messages if limit == 0 else min(messages, limit)
    settled = _wait_settled(broker, expected)
    held = int(broker.hlen("unacked"))
    rss = (harness._status_kib(worker.proc.pid, "VmRSS") or 0) / 1024
    srv.stop_worker(worker)
    if not settled:
        raise RuntimeError(f"limit {limit}: the worker's held count did not settle ({held} held of {messages})")
    return held, rss


def _wait_settled(broker: redis.Redis, expected: int, timeout: float = 600) -> bool:
    """Until the worker holds `expected` messages and the count has not moved for 3 s."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        held = int(broker.hlen("unacked"))
        if held != last:
            last, since = held, time.monotonic()
        elif held >= expected and time.monotonic() - since >= 3:
            return True
        time.sleep(0.25)
    return False
