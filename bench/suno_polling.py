"""Suno polling: fetch calls per job and detection lag with many jobs in flight, batch polling
(one `POST /suno/fetch` for every due task, up to SONGQUEUE_SUNO_POLL_BATCH_SIZE) against
per-task polling (the same worker with a batch size of 1), in the same run.

Time is scaled as in poll_efficiency: generation times and poll settings are divided by
SCALE and lags multiplied back, so the table reads in real-world seconds. The workers run
only the submit and poll queues: downloads are not what is measured, and leaving them
queued keeps the machine's two cores for polling.

- calls/job: the sandbox's fetch requests (single or batch) during the run, per job.
- lag: from the upstream's finish (the sandbox's `finished_at`) to the job's DOWNLOADING
  transition.
"""

from __future__ import annotations

import time

from bench import harness
from bench.harness import Section, fmt, median, quantile
from producer.models.job_record import JobState
from producer.models.suno import SunoRequest

NOMINAL = 300.0  # seconds of generation, spread +-10 %
# real-world seconds: initial delay, min interval, max interval (the shipped defaults)
SCHEDULE = (5.0, 2.0, 30.0)
WINDOW = 10.0  # SONGQUEUE_SUNO_POLL_BATCH_WINDOW, real-world seconds (the default)
POLLERS = {"batch (100 per call)": 100, "per task": 1}


def run(quick: bool) -> Section:
    jobs = 200 if quick else 1000
    scale = 10.0
    initial, low, high = (s / scale for s in SCHEDULE)
    results: dict[str, tuple[float, list[float], float]] = {}
    with harness.servers("suno", "--song-duration", "1") as srv:
        for name, size in POLLERS.items():
            env = srv.env(SUNO_BASE_URL=srv.sandbox_url, SUNO_API_KEY=harness.API_KEY,
                          SUNO_POLL_INITIAL_DELAY=initial, SUNO_POLL_MIN_INTERVAL=low, SUNO_POLL_MAX_INTERVAL=high,
                          SUNO_POLL_BATCH_SIZE=size, SUNO_POLL_BATCH_WINDOW=WINDOW / scale)
            queue = harness.producer(env)
            first = srv.sandbox_stats()
            before, sizes_before = first["fetch_requests"], len(first["batch_sizes"])
            gens = [NOMINAL * (0.9 + 0.2 * (i + 0.5) / jobs) / scale for i in range(jobs)]
            ids = [queue.submit(SunoRequest(gpt_description_prompt=harness.prompt(f"suno {size}", gen_time=f"{g:.3f}")),
                                provider="suno").id for g in gens]
            worker = srv.start_worker(env, f"suno-{size}", queues="submit,poll", concurrency=4)
            _wait_downloading(queue.store, jobs, timeout=600 + 3 * NOMINAL / scale)
            srv.stop_worker(worker)
            stats = srv.sandbox_stats()
            lags = []
            for record in harness.load_records(queue.store, ids):
                reached = harness.entered(record, JobState.DOWNLOADING)
                if reached is None:
                    raise RuntimeError(f"suno polling, {name}: job {record.id} ended {record.state.value}")
                lags.append((reached - stats["tasks"][record.upstream_task_id]["finished_at"]) * scale)
            sizes = stats["batch_sizes"][sizes_before:]
            print(name, "batch calls", len(sizes), "median", median(sizes), "max", max(sizes, default=0), flush=True)
            results[name] = ((stats["fetch_requests"] - before) / jobs, lags, float(jobs))
    batch_calls, batch_lags, _ = results["batch (100 per call)"]
    single_calls, single_lags, _ = results["per task"]
    rows = [[name, fmt(jobs), fmt(calls, 2), fmt(median(lags), 1), fmt(quantile(lags, 0.9), 1), fmt(max(lags), 1)]
            for name, (calls, lags, _) in results.items()]
    fewer = single_calls / batch_calls if batch_calls else float("inf")
    return Section(
        title="Suno polling: batch against per task",
        setup=(f"{jobs} Suno jobs submitted at once, one worker (concurrency 4, submit and poll queues only), "
               f"generation {NOMINAL:g} s x 0.9..1.1 nominal, time scale 1/{scale:g}; the shipped schedule "
               f"(first poll after {SCHEDULE[0]:g} s, then aimed at the predicted finish within "
               f"[{SCHEDULE[1]:g} s, {SCHEDULE[2]:g} s]) for both pollers, which differ only in "
               f"SONGQUEUE_SUNO_POLL_BATCH_SIZE (100 with a {WINDOW:g} s batch window, or 1 = per task)."),
        table=harness.table(["poller", "jobs", "fetch calls/job", "lag median s", "lag p90 s", "lag max s"], rows),
        notes=[f"Batch polling made {fmt(fewer, 1)}x fewer fetch calls per job; median lag "
               f"{fmt(median(batch_lags), 1)} s against {fmt(median(single_lags), 1)} s per task "
               "(goal: at least 10x fewer calls at no worse median lag)."],
    )


def _wait_downloading(store, total: int, timeout: float) -> None:
    """Until every job has left polling (DOWNLOADING, or ended)."""
    deadline = time.monotonic() + timeout
    states = (JobState.DOWNLOADING, JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT)
    while harness.count_states(store, states) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"suno polling: jobs still polling after {timeout:.0f}s")
        time.sleep(0.5)
