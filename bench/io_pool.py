"""Download pool: how fast a backlog of download messages drains on prefork slots against
a thread pool, same run, same backlog size.

Jobs with an instant upstream and 1 s songs are submitted and polled by a submit+poll
worker until every one is DOWNLOADING, so the download queue holds a backlog of
one download message per song (2 per job: each stores the song's cover, then its MP3). Only then does a download worker start; the
time from its start to the last job SUCCEEDED is the drain time. Variant A is the old
layout (prefork, concurrency 2); variant B is the recommended one (`--pool threads -c 16`,
`make worker-io`). The work per message is the same: stream, verify, tag, store, record.
"""

from __future__ import annotations

import time

import redis

from bench import harness
from bench.harness import Section, fmt
from producer.core.models.job_record import JobState

VARIANTS = (("prefork", 2), ("threads", 16))
SONGS_PER_JOB = 2  # the sandbox's Udio answer: one download message each


def run(quick: bool) -> Section:
    jobs = 60 if quick else 250
    rows = []
    with harness.servers("io-pool", "--generation-time", "0", "--song-duration", "1") as srv:
        for pool, concurrency in VARIANTS:
            rows.append(_drain(srv, jobs, pool, concurrency))
    base = rows[0][3]
    table_rows = [[f"`--pool {pool} -c {c}`", f"{jobs} jobs / {runs:,} task runs", fmt(seconds, 1),
                   f"**{fmt(rate, 1)}**", f"{fmt(jobs / seconds, 2)}", f"{fmt(rate / base, 2)}x", memory]
                  for pool, c, runs, rate, seconds, memory in rows]
    return Section(
        title="Download pool: draining a backlog",
        setup=(f"{jobs} jobs, instant upstream, 1 s songs (~16 KiB MP3 + PNG cover each): a submit+poll worker "
               "(prefork, concurrency 2) brings them all to DOWNLOADING first, so the download queue holds the "
               "whole backlog; then one download worker starts and drains it. Same machine, Redis and sandbox "
               "for both variants; baseline: the prefork layout, measured in the same run."),
        table=harness.table(["download worker", "backlog", "drain s", "download+finalize runs/s",
                             "jobs/s", "vs prefork -c 2", "peak RSS MiB"], table_rows),
        notes=["A download run waits mostly on the sandbox, fsync and Redis round trips; threads overlap those "
               "waits where two prefork slots cannot. Threads share one process: memory stays one process's."],
    )


def _drain(srv: harness.Servers, jobs: int, pool: str, concurrency: int) -> tuple[str, int, float, float, float, str]:
    env = srv.env(POLL_INITIAL_DELAY=0)
    queue = harness.producer(env)
    submitter = srv.start_worker(env, f"io-{pool}-sp", queues="submit,poll", concurrency=2)
    ids = harness.submit_jobs(queue, [harness.prompt(f"io {pool} {i}", gen_time=0) for i in range(jobs)])
    # Every job DOWNLOADING with all its download messages sent (one per song), so stopping
    # the submit+poll worker cuts no poll off between the two. (It waited for 4 a job, from
    # when each asset had a message of its own, and timed out: a run that could not finish.)
    broker = redis.Redis.from_url(env["SONGQUEUE_BROKER_URL"])
    harness.stack.wait_until(lambda: harness.count_states(queue.store, [JobState.DOWNLOADING]) >= jobs
                             and broker.llen("download") >= SONGS_PER_JOB * jobs, 600,
                             "every job's downloads to be queued", interval=0.25)
    srv.stop_worker(submitter)
    downloader = srv.start_worker(env, f"io-{pool}-dl", queues="download,callback", concurrency=concurrency,
                                  pool=pool)
    t0 = time.monotonic()  # from the worker's "ready", so its start-up is not counted
    done = harness.wait_for_jobs(queue.store, jobs, timeout=1200)
    seconds = time.monotonic() - t0
    memory = downloader.memory()
    srv.stop_worker(downloader)
    records = harness.load_records(queue.store, ids)
    bad = {s: n for s, n in harness.state_counts(records).items() if s != JobState.SUCCEEDED.value}
    if bad or done < jobs:
        raise RuntimeError(f"{pool}: jobs did not all succeed: {bad}")
    runs = len(downloader.runs())
    return pool, concurrency, runs, runs / seconds, seconds, memory.describe()
