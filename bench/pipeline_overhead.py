"""Pipeline overhead: jobs per second end to end with an instant upstream, against Celery
no-op tasks per second on the same box, broker and worker configuration.

The upstream answers SUCCESS at once (`sandbox:gen_time=0`, first poll without delay) and
files are small, so what is left is our own work per job (submit, poll, one download task
per song, the last of which finalizes) plus Celery's. The baseline is `bench/noop_worker.py`, a task that
does nothing, run by a real worker with the same concurrency. The ratio
(task runs per job x jobs per second) / (no-op tasks per second) is the share of Celery's
bare task rate our tasks achieve; its inverse is how much dearer one of our task runs is
than a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench import harness
from bench.harness import Section, fmt, median
from producer.core.models.job_record import JobState

CONCURRENCY = 2


def run(quick: bool) -> Section:
    rounds = 3
    jobs = 20 if quick else 100
    noops = 300 if quick else 1500
    with harness.servers("pipeline", "--generation-time", "0", "--song-duration", "1") as srv:
        job_rates, lat, per_job_runs, cpu_per_job = _jobs(srv, rounds, jobs)
        noop_rates = _noops(srv, rounds, noops)

    jobs_s, noop_s = median(job_rates), median(noop_rates)
    runs_per_job = per_job_runs
    ratio = runs_per_job * jobs_s / noop_s
    rows = [
        ["songqueue jobs, instant upstream", f"{rounds} x {jobs} jobs", f"{fmt(jobs_s)} jobs/s",
         f"{fmt(runs_per_job)} task runs/job", f"{fmt(runs_per_job * jobs_s, 0)} runs/s",
         f"{fmt(1000 * CONCURRENCY / (runs_per_job * jobs_s), 1)} ms"],
        ["Celery no-op task (baseline)", f"{rounds} x {noops} tasks", "–", "1", f"{fmt(noop_s, 0)} runs/s",
         f"{fmt(1000 * CONCURRENCY / noop_s, 1)} ms"],
        ["**ratio** (our task runs/s ÷ no-op runs/s)", "", "", "", f"**{fmt(ratio)}**",
         f"**{fmt(noop_s / (runs_per_job * jobs_s), 1)}x** per run"],
    ]
    return Section(
        title="Pipeline overhead",
        setup=(f"One worker, concurrency {CONCURRENCY}, all queues; instant upstream (`sandbox:gen_time=0`, "
               f"`SONGQUEUE_POLL_INITIAL_DELAY=0`), 1 s songs (~16 KiB MP3 + PNG cover per song), file storage. "
               f"Jobs are submitted through `SongQueue.submit` while the worker runs; a round lasts from the "
               f"first submit to the last job SUCCEEDED. Baseline: `bench/noop_worker.py`, a task that does "
               f"nothing, sent {noops} at a time to a real worker with the same concurrency and configuration."),
        table=harness.table(
            ["workload", "size", "jobs/s (median)", "task runs per job", "task runs/s (median)",
             "slot time per task run"], rows),
        notes=[
            f"Median job latency (submit to SUCCEEDED) while {jobs} jobs compete: {fmt(median(lat))} s.",
            f"**Worker CPU per job: {fmt(cpu_per_job * 1000, 1)} ms** (user + system of the worker's main process "
            "and pool children over all rounds, start-up excluded, divided by the jobs; the sandbox and Redis "
            "are not counted).",
            "Task runs per job are counted from the worker's log (every run of submit, poll, download, "
            "finalize, retries included).",
            "Slot time per task run = concurrency / runs per second: what one run costs a worker slot, "
            "including waiting on Redis and the sandbox (which share the same 2 cores).",
        ],
    )


def _jobs(srv: harness.Servers, rounds: int, jobs: int) -> tuple[list[float], list[float], float, float]:
    env = srv.env(POLL_INITIAL_DELAY=0)
    worker = srv.start_worker(env, "pipeline-songqueue", concurrency=CONCURRENCY)
    idle_cpu = harness.cpu_seconds(worker.proc.pid)  # start-up is not a job's cost
    queue = harness.producer(env)
    rates: list[float] = []
    lat: list[float] = []
    all_ids: list[str] = []
    for r in range(rounds):
        ids = harness.submit_jobs(queue, [harness.prompt(f"pipeline r{r} j{i}", gen_time=0) for i in range(jobs)])
        all_ids += ids
        harness.wait_for_jobs(queue.store, len(all_ids), timeout=600)
        records = harness.load_records(queue.store, ids)
        bad = {s: n for s, n in harness.state_counts(records).items() if s != JobState.SUCCEEDED.value}
        if bad:
            raise RuntimeError(f"pipeline round {r}: jobs did not all succeed: {bad}")
        rates.append(jobs / harness.makespan(records))
        lat += harness.latencies(records)
    # Finalize logs its run just after the job is marked SUCCEEDED.
    _settle(lambda: len(worker.runs()))
    runs = len(worker.runs())
    cpu = harness.cpu_seconds(worker.proc.pid) - idle_cpu
    srv.stop_worker(worker)
    return rates, lat, runs / len(all_ids), cpu / len(all_ids)


def _noops(srv: harness.Servers, rounds: int, count: int) -> list[float]:
    from bench.noop_worker import NOOP, QUEUE

    env = srv.env()
    worker = srv.start_worker(env, "pipeline-noop", queues=QUEUE, concurrency=CONCURRENCY, app="bench.noop_worker")
    sender = harness.producer(env).celery
    rates: list[float] = []
    seen = 0
    for _ in range(rounds):
        start = time.monotonic()
        for i in range(count):
            sender.send_task(NOOP, args=[i], queue=QUEUE)
        seen += count
        harness.stack.wait_until(lambda seen=seen: len(worker.runs()) >= seen, 600, "the no-op tasks", interval=0.02)
        rates.append(count / (time.monotonic() - start))
    srv.stop_worker(worker)
    return rates


def _settle(count: Callable[[], int], quiet: float = 1.0, timeout: float = 30) -> None:
    """Wait until count() has not changed for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
