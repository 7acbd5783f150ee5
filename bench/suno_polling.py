"""Suno polling: fetch calls per job and detection lag with 1,000 jobs in flight, batch
polling (one drainer per provider, one `POST /suno/fetch` for every due task, up to
SONGQUEUE_SUNO_POLL_BATCH_SIZE) against per-task polling (the same worker with a batch size
of 1), in the same run, on the same generation times and the same poll schedule.

Time is scaled as in poll_efficiency: generation times and poll settings are divided by
SCALE and lags multiplied back, so the table reads in real-world seconds. The workers run
only the submit and poll queues: downloads are not what is measured.

The per-task baseline is given twice, because at this many jobs a worker on a shared
2-core machine cannot make every per-task call on time (it is starved, makes fewer calls
than its schedule and detects late):
- measured: what the per-task worker did;
- at the schedule: the calls it would make if every poll ran exactly when due, counted from
  each job's own submit time and its task's generation by the same `next_poll_delay` the
  workers use, on the progress the sandbox reports (clips submitted 0 %, queued 5 %,
  streaming 50 %). Its lag is the best per-task polling can do. The ratio is taken against it.

- calls/job: the sandbox's fetch requests (single or batch) during the run, per job.
- jobs per call: task ids in each batch call (`batch_sizes` in the sandbox's stats).
- lag: from the upstream's finish (the sandbox's `finished_at`) to the job's DOWNLOADING
  transition.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from bench import harness
from bench.harness import Section, fmt, median, quantile
from producer.core.models.job_record import JobRecord, JobState
from producer.core.models.suno import SunoRequest
from workers.retry_policy import next_poll_delay

NOMINAL = 300.0  # seconds of generation, spread +-10 %
# real-world seconds: initial delay, min interval, max interval (the shipped defaults)
SCHEDULE = (5.0, 2.0, 30.0)
WINDOW = 10.0  # SONGQUEUE_SUNO_POLL_BATCH_WINDOW, real-world seconds (the default)
SIZE = 100  # SONGQUEUE_SUNO_POLL_BATCH_SIZE (the default)
CONCURRENCY = 8
# The sandbox's Suno clips as the provider reads them (workers/providers/suno.py CLIP_PROGRESS):
START_FRACTION, STREAMING_FROM = 0.05, 0.20  # sandbox/tasks.py, sandbox/suno.py QUEUED_UNTIL


@dataclass
class Row:
    name: str
    calls_per_job: float
    lags: list[float]
    sizes: list[int]


def run(quick: bool) -> Section:
    jobs = 200 if quick else 1000
    # Real time at the full size: a 1/10 scale would ask this loaded 2-core machine for 450
    # merged answers a second, and both pollers would measure the machine, not the design.
    scale = 5.0 if quick else 1.0
    initial, low, high = (s / scale for s in SCHEDULE)
    gens = [NOMINAL * (0.9 + 0.2 * (i + 0.5) / jobs) / scale for i in range(jobs)]
    rows: list[Row] = []
    other: dict[str, int] = {}  # jobs that never reached DOWNLOADING, by poller
    with harness.servers("suno", "--song-duration", "1") as srv:
        for name, size in (("batch", SIZE), ("per task, measured", 1)):
            env = srv.env(SUNO_BASE_URL=srv.sandbox_url, SUNO_API_KEY=harness.API_KEY,
                          SUNO_POLL_INITIAL_DELAY=initial, SUNO_POLL_MIN_INTERVAL=low, SUNO_POLL_MAX_INTERVAL=high,
                          SUNO_POLL_BATCH_SIZE=size, SUNO_POLL_BATCH_WINDOW=WINDOW / scale,
                          # 1,000 submits queued at once take longer than the default grace:
                          # the watchdog must not take that backlog for dead workers.
                          WATCHDOG_GRACE=600)
            queue = harness.producer(env)
            first = srv.sandbox_stats()
            calls_before, batches_before = first["fetch_requests"], len(first["batch_sizes"])
            ids = [queue.submit(SunoRequest(gpt_description_prompt=harness.prompt(f"suno {size}", gen_time=f"{g:.3f}")),
                                provider="suno").id for g in gens]
            worker = srv.start_worker(env, f"suno-{size}", queues="submit,poll", concurrency=CONCURRENCY)
            _wait_downloading(queue.store, jobs, timeout=900 + 3 * NOMINAL / scale)
            srv.stop_worker(worker)
            stats = srv.sandbox_stats()
            records = harness.load_records(queue.store, ids)
            tasks = {r.upstream_task_id: stats["tasks"][r.upstream_task_id] for r in records}
            polled = [r for r in records if harness.entered(r, JobState.DOWNLOADING) is not None]
            if len(polled) < jobs:
                other[name] = jobs - len(polled)
            lags = [(_downloading(r) - tasks[r.upstream_task_id]["finished_at"]) * scale for r in polled]
            rows.append(Row(name, (stats["fetch_requests"] - calls_before) / jobs, lags,
                            stats["batch_sizes"][batches_before:]))
            if size == 1:
                polls = [_at_schedule(r, tasks[r.upstream_task_id], initial, low, high) for r in polled]
                rows.append(Row("per task, at the schedule", sum(n for n, _ in polls) / len(polls),
                                [lag * scale for _, lag in polls], []))
    batch, measured, ideal = rows
    table = harness.table(
        ["poller", "jobs", "fetch calls/job", "jobs per call median", "jobs per call max", "lag median s",
         "lag p90 s", "lag max s"],
        [[r.name, fmt(jobs), fmt(r.calls_per_job, 2), fmt(median(r.sizes), 0) if r.sizes else "1",
          fmt(max(r.sizes), 0) if r.sizes else "1", fmt(median(r.lags), 1), fmt(quantile(r.lags, 0.9), 1),
          fmt(max(r.lags), 1)] for r in rows])
    return Section(
        title="Suno polling: batch against per task",
        setup=(f"{jobs} Suno jobs submitted at once, one worker (concurrency {CONCURRENCY}, submit and poll "
               f"queues only), generation {NOMINAL:g} s x 0.9..1.1 nominal, time scale 1/{scale:g} (lags in "
               f"real-world seconds); the shipped schedule (first poll after {SCHEDULE[0]:g} s, then aimed at the "
               f"predicted finish within [{SCHEDULE[1]:g} s, {SCHEDULE[2]:g} s]) for both pollers, which differ "
               f"only in SONGQUEUE_SUNO_POLL_BATCH_SIZE ({SIZE} with a {WINDOW:g} s batch window, or 1 = per "
               f"task). Load average at the end: {_load()}."),
        table=table,
        notes=[f"Batch polling made {_ratio(ideal, batch)}x fewer fetch calls per job than per-task polling at its "
               f"schedule ({_ratio(measured, batch)}x fewer than the per-task worker managed); median lag "
               f"{fmt(median(batch.lags), 1)} s against {fmt(median(ideal.lags), 1)} s at the schedule and "
               f"{fmt(median(measured.lags), 1)} s measured (goal: at least 10x fewer calls at no worse median lag).",
               *(f"{name}: {n} jobs ended without reaching DOWNLOADING (left out of the lags)"
                 for name, n in other.items())],
    )


def _ratio(base: Row, batch: Row) -> str:
    return fmt(base.calls_per_job / batch.calls_per_job, 1) if batch.calls_per_job else "–"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _downloading(record: JobRecord) -> float:
    reached = harness.entered(record, JobState.DOWNLOADING)
    if reached is None:
        raise RuntimeError(f"suno polling: job {record.id} ended {record.state.value}")
    return reached


def _at_schedule(record: JobRecord, task: dict, initial: float, low: float, high: float) -> tuple[int, float]:
    """(fetches, lag) of per-task polling that runs every poll exactly when due."""
    submitted, started, finished = record.submitted_at or record.created_at, task["submitted_at"], task["finished_at"]
    gen = finished - started
    at, polls = submitted + initial, 0
    while True:
        polls += 1
        if at >= finished:
            return polls, at - finished
        frac = (at - started) / gen
        progress = 0 if frac < START_FRACTION else 5 if frac < STREAMING_FROM else 50
        at += next_poll_delay(at - submitted, progress, low, high)


def _wait_downloading(store, total: int, timeout: float) -> None:
    """Until every job has left polling (DOWNLOADING, or ended)."""
    deadline = time.monotonic() + timeout
    states = (JobState.DOWNLOADING, JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT)
    while harness.count_states(store, states) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"suno polling: jobs still polling after {timeout:.0f}s")
        time.sleep(0.5)
