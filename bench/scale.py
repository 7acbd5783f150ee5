"""Scale: thousands of jobs in flight at once; none lost, none submitted twice, and what
it costs in worker and Redis memory.

All jobs are submitted at once through `SongQueue.submit`; the generation time is scaled
down (GEN seconds instead of Udio's minutes) but long enough that every job is waiting on
the upstream at the same time. Two workers in the recommended layout
(docs/operations.md, "Worker layout"): submit+poll on prefork (concurrency 2), download+
callback on a thread pool (`--pool threads -c 16`), shipped poll settings.

The ideal is priced before the measured jobs, on idle workers of the same layout that poll
at once: batches of 100 and 400 jobs with an instant upstream, and the slope between their
spans is what one more job costs (it cancels what every batch takes whatever its size).
`hold` (`make bench-100k`, `--hold`) starts the measured workers only once every job is
queued, so every job waits at once and the time to drain is the measure.

Countdown (poll) messages are held by the worker that fetched them until due, and
acks_late keeps them in the broker's `unacked` hash meanwhile; SONGQUEUE_WORKER_ETA_TASK_LIMIT
(default 1000) caps how many one worker holds. The peak of that hash and the workers'
memory show what holding costs.

`--broker rabbitmq-classic|rabbitmq-quorum` runs the same on RabbitMQ (a vhost of its own;
Redis stays the job store); `--compare` runs the three brokers one after the other and puts
worker RSS, broker memory and who holds the messages side by side.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import redis

from bench import harness, rabbitmq
from bench.harness import Section, fmt
from producer import SongQueue
from producer.core.models.job_record import TERMINAL_STATES, JobRecord, JobState

LIVE = [s for s in JobState if s not in TERMINAL_STATES]
WAITING = [JobState.SUBMITTED, JobState.GENERATING]
# (jobs, generation seconds): `make bench` runs the full 10,000 jobs in flight.
TARGET_FULL = 10_000
QUICK = (500, 30.0)
FULL = (TARGET_FULL, 400.0)
IO_THREADS = 16
PROJECTED = 100_000
# Two batches with an instant upstream run before the measured jobs, to price one more job
# on the idle workers (the slope between their spans).
CALIBRATION_BATCHES = (100, 400)


STALL = 180.0
BROKERS = ("redis", "rabbitmq-classic", "rabbitmq-quorum")
# rabbitmqctl costs about a CPU second a call on this machine: look at RabbitMQ this often.
AMQP_SAMPLE_SECONDS = 10.0


def stall_seconds(gen: float, submit_seconds: float) -> float:
    """Seconds without any job ending before the rest count as lost: never less than the
    generation time plus the time it took to submit them, plus the usual margin."""
    return gen + submit_seconds + STALL


# The slowest rate a run may drain at before its deadline: well under the 4.8 jobs/s of
# the 2,000-job run on a busy 2-core machine.
FLOOR_JOBS_PER_SECOND = 2.0


def deadline_seconds(jobs: int, gen: float, submit_seconds: float) -> float:
    """How long the run may take in all: the stall allowance plus every job at the floor
    rate. A fixed hour cut a 10,000-job run short on a loaded machine, counting jobs that
    were still moving as lost."""
    return stall_seconds(gen, submit_seconds) + jobs / FLOOR_JOBS_PER_SECOND


@contextlib.contextmanager
def broker_env(srv: harness.Servers, broker: str, amqp_url: str, **settings: object) -> Iterator[dict[str, str]]:
    """The workers' environment on `broker`: a fresh Redis database, or a RabbitMQ vhost of its own."""
    if broker == "redis":
        yield srv.env(**settings)
        return
    with rabbitmq.vhost(amqp_url) as (url, _):
        yield srv.env(broker_url=url, amqp_queue_type=broker.removeprefix("rabbitmq-"), **settings)


class BrokerGauge:
    """Peaks of who holds the messages, and of the broker's memory, on either broker."""

    def __init__(self, env: dict[str, str]) -> None:
        url = env["SONGQUEUE_BROKER_URL"]
        self.redis = redis.Redis.from_url(url) if url.startswith("redis") else None
        self.vhost = "" if self.redis else url.rsplit("/", 1)[1]
        self.peak = {"unacked": 0, "backlog": 0, "delayed": 0, "memory": 0}
        self.last = 0.0

    def sample(self) -> None:
        if self.redis is not None:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hlen("unacked")
            for name in ("submit", "poll", "download"):
                pipe.llen(name)
            unacked, *queued = pipe.execute()
            self._peaks(unacked, sum(queued), 0, 0)
        elif time.monotonic() - self.last >= AMQP_SAMPLE_SECONDS:
            self.last = time.monotonic()
            held = rabbitmq.holdings(self.vhost)
            self._peaks(held.unacked, held.ready, held.delayed, held.memory)

    def _peaks(self, unacked: int, backlog: int, delayed: int, memory: int) -> None:
        for key, value in (("unacked", unacked), ("backlog", backlog), ("delayed", delayed), ("memory", memory)):
            self.peak[key] = max(self.peak[key], value)

    def memory_row(self, info: dict) -> str:
        if self.redis is not None:
            return f"{fmt(info['used_memory_peak'] / 2**20, 1)} MiB (Redis: broker and job store together)"
        return (f"{fmt(self.peak['memory'] / 2**20, 1)} MiB (the vhost's queues, peak of samples every "
                f"{fmt(AMQP_SAMPLE_SECONDS, 0)} s)")


def run(quick: bool, jobs: int | None = None, gen: float | None = None, broker: str = "redis",
        amqp_url: str = rabbitmq.DEFAULT_URL, hold: bool = False, **settings: object) -> Section:
    """`jobs` and `gen` override the preset sizes (python -m bench.scale --jobs N); `settings`
    are SONGQUEUE_ settings of the workers (without the prefix). With `hold`, the workers
    start only once every job is queued: all wait at once, and the drain from there is the
    measure."""
    preset = jobs is None
    default_jobs, default_gen = QUICK if quick else FULL
    jobs = jobs or default_jobs
    gen = gen or default_gen
    with harness.servers("scale", "--song-duration", "1") as srv, \
            broker_env(srv, broker, amqp_url, **settings) as env:
        queue = harness.producer(env)
        per_job, calibration = _calibrate(srv, env, queue)
        base = srv.redis_info()["used_memory"]  # the calibration's records, not counted per job
        if not hold:
            sp, dl = _start_workers(srv, env, "")
            sp_start, dl_start = sp.memory(), dl.memory()
        gauge = BrokerGauge(env)
        peak = gauge.peak | {"open": 0, "waiting": 0}

        def sample() -> None:
            gauge.sample()
            peak.update(gauge.peak)
            peak["open"] = max(peak["open"], harness.count_states(queue.store, LIVE))
            peak["waiting"] = max(peak["waiting"], harness.count_states(queue.store, WAITING))

        prompts = [harness.prompt(f"scale {i}", gen_time=gen) for i in range(jobs)]
        ids: list[str] = []
        t0 = time.monotonic()
        for start in range(0, jobs, 250):
            ids += harness.submit_jobs(queue, prompts[start:start + 250])
            sample()
        submit_seconds = time.monotonic() - t0
        started_at = None
        if hold:
            # Every job waited in the queue before any was taken: the drain starts now.
            started_at = time.time()
            sp, dl = _start_workers(srv, env, "")
            sp_start, dl_start = sp.memory(), dl.memory()
        # No job can end before its generation does: the stall rule starts counting only
        # after the generation time (plus the submit phase), so it cannot fire early.
        harness.wait_for_jobs(queue.store, sum(CALIBRATION_BATCHES) + jobs, timeout=deadline_seconds(jobs, gen, submit_seconds),
                              stall=stall_seconds(gen, submit_seconds),
                              on_sample=sample, interval=0.5)
        sp_mem, dl_mem = sp.memory(), dl.memory()
        info = srv.redis_info()
        records = harness.load_records(queue.store, ids)
        stats = srv.sandbox_stats()
        sp_runs, dl_runs = sp.runs(), dl.runs()
        runs = len(sp_runs) + len(dl_runs)

    counts = harness.state_counts(records)
    done = counts.get(JobState.SUCCEEDED.value, 0)
    failed = sum(counts.get(s.value, 0) for s in TERMINAL_STATES if s != JobState.SUCCEEDED)
    lost = jobs - done - failed
    by_prompt = stats["submits_by_prompt"]
    twice = sum(1 for p in prompts if by_prompt.get(p, 0) > 1)
    never = sum(1 for p in prompts if by_prompt.get(p, 0) == 0)
    span = harness.makespan(records)
    if started_at is None:
        ideal = max(gen, submit_seconds) + jobs * per_job
        ideal_formula = f"max(generation {fmt(gen, 0)} s, submit {fmt(submit_seconds, 0)} s)"
    else:
        # Jobs reach the upstream only once the workers start: the last one still generates after.
        span = max(e for e in (harness.entered(r, JobState.SUCCEEDED) for r in records) if e is not None) - started_at
        ideal = gen + jobs * per_job
        ideal_formula = f"generation {fmt(gen, 0)} s"
    slowest = _slowest_stage(jobs, sp_runs, dl_runs)
    peak_mib = info["used_memory_peak"] / 2**20
    per_job_bytes = (info["used_memory_peak"] - base) / jobs
    rows = [
        ["jobs submitted", f"{jobs:,} in {fmt(submit_seconds, 1)} s ({fmt(jobs / submit_seconds, 0)} jobs/s "
                           f"through `SongQueue.submit`)"],
        ["peak jobs open (not terminal) / waiting on the upstream", f"{peak['open']:,} / {peak['waiting']:,}"],
        ["**completed / failed / lost**", f"**{done:,} / {failed:,} / {lost:,}**"],
        ["**submitted twice upstream** / never submitted", f"**{twice:,}** / {never:,}"],
        ["makespan (first submit to last SUCCEEDED)" if started_at is None else
         "time to drain (workers started, every job already queued, to the last SUCCEEDED)",
         f"{fmt(span, 0)} s ({fmt(done / span)} jobs/s)"],
        ["task runs per job (both workers' logs)", fmt(runs / jobs, 1)],
        ["median poll runs per job", fmt(harness.median(r.attempts.get("poll", 0) for r in records), 1)],
        ["peak messages held by workers, unacked (countdowns + running)", f"{peak['unacked']:,}"],
        ["peak messages waiting in the queues (submit+poll+download)", f"{peak['backlog']:,}"],
        ["peak countdowns held by the broker (celery_delayed_* queues)", f"{peak['delayed']:,}"],
        ["broker memory peak", gauge.memory_row(info)],
        ["submit+poll worker peak RSS MiB", f"{sp_mem.describe()} (at start: pool {fmt(sp_start.child_peak, 0)})"],
        ["download+callback worker (threads) peak RSS MiB", f"{fmt(dl_mem.main, 0)} (at start: {fmt(dl_start.main, 0)})"],
        ["makespan against the ideal" if started_at is None else "time to drain against the ideal",
         f"{fmt(span, 0)} s vs {fmt(ideal, 0)} s ideal = {ideal_formula} + {jobs:,} jobs x "
         f"{fmt(per_job * 1000, 1)} ms (**{fmt(span / ideal)}x**)"],
        ["per-job cost, measured before the run on the idle workers",
         f"{fmt(per_job * 1000, 1)} ms = ({fmt(calibration[1], 2)} s − {fmt(calibration[0], 2)} s) ÷ "
         f"({CALIBRATION_BATCHES[1]} − {CALIBRATION_BATCHES[0]}) jobs (spans, first submit to last SUCCEEDED, "
         "of two batches with an instant upstream)"],
        ["the busiest stage's task time in the run", slowest],
        ["Redis used_memory_peak", f"{fmt(peak_mib, 1)} MiB ({fmt(per_job_bytes / 1024, 1)} KiB "
                                   f"per job = (peak − {fmt(base / 2**20, 1)} MiB before the run) ÷ jobs; "
                                   f"{fmt(info['used_memory'] / 2**20, 1)} MiB at the end)"],
    ]
    notes = [] if jobs >= PROJECTED else [
        f"Projection to {PROJECTED:,} jobs in flight, from the per-job figures measured here: Redis "
        f"{fmt(per_job_bytes * PROJECTED / 2**30, 2)} GiB at the peak (records of jobs in "
        f"flight, queues; ended jobs leave with SONGQUEUE_JOB_RETENTION), {fmt(runs / jobs * PROJECTED, 0)} "
        f"task runs, and on this 2-core machine about {fmt(PROJECTED / (done / span) / 3600, 1)} h at "
        f"{fmt(done / span)} jobs/s. What runs out first: worker throughput (CPU for the task runs), then Redis "
        "memory; worker memory is capped by the ETA limit. `make bench-100k` measures it instead."]
    notes += [
        f"Lost = neither SUCCEEDED nor FAILED/TIMED_OUT/CANCELLED when the run ended (no job ended for "
        f"{fmt(stall_seconds(gen, submit_seconds), 0)} s, the generation and submit time plus 180 s, or "
        f"{fmt(deadline_seconds(jobs, gen, submit_seconds), 0)} s passed: that plus every job at "
        f"{fmt(FLOOR_JOBS_PER_SECOND, 0)} jobs/s). "
        "Submitted twice = the sandbox's submits_by_prompt > 1 for a job's unique prompt.",
        (f"Countdowns waited in the broker (celery_delayed_* queues, at most {peak['delayed']:,} at once) and "
         "reached the workers when due; " if broker == "rabbitmq-quorum" else
         "A worker holds every countdown (poll) message it has fetched until it is due (Celery raises its "
         "prefetch for each ETA message), in its main process; ")
        + f"at most {peak['unacked']:,} messages were held by the workers "
        f"at once here, while up to {peak['backlog']:,} waited in the queues"
        + (" (the workers' throughput, not their memory, bounded what they held)"
           if peak["backlog"] > peak["unacked"] else "")
        + f". SONGQUEUE_WORKER_ETA_TASK_LIMIT={harness.settings_from(env).worker_eta_task_limit} caps what one "
        "worker holds; the rest wait in the broker.",
        f"Pool children: submit+poll worker {fmt(sp_start.child_peak, 0)} -> {fmt(sp_mem.child_peak, 0)} MiB, "
        f"download worker (threads: one process) {fmt(dl_start.main, 0)} -> {fmt(dl_mem.main, 0)} MiB (peak "
        "resident, from start to end of the run).",
        "Redis holds the job records (with their transitions and songs), the state indexes, the queues and "
        "the unacked messages; ended records stay for SONGQUEUE_JOB_RETENTION (30 days by default), so "
        "`used_memory` at the end is the cost of keeping ended jobs until then (see Retention).",
    ]
    if failed:
        codes: dict[str, int] = {}
        for r in records:
            if r.state.terminal and r.state != JobState.SUCCEEDED:
                code = r.error.code if r.error else r.state.value
                codes[code] = codes.get(code, 0) + 1
        notes.append("Failures by error code: " + ", ".join(f"{c}: {n}" for c, n in sorted(codes.items())))
    if preset and not quick and jobs < TARGET_FULL:
        notes.append(f"Reduced from {TARGET_FULL:,} to {jobs:,} jobs so that `make bench` stays within about "
                     f"30 minutes: at the {fmt(done / span)} jobs/s measured here, {TARGET_FULL:,} jobs would take "
                     f"about {fmt(TARGET_FULL / (done / span) / 60, 0)} minutes on their own. "
                     f"`python -m bench.scale --jobs {TARGET_FULL}` runs the full size.")
    return Section(
        title="Scale" if broker == "redis" else f"Scale on {broker}",
        setup=(f"{jobs:,} jobs submitted at once, generation time {fmt(gen, 0)} s (scaled down from minutes), "
               f"1 s songs. Workers: submit+poll (prefork, concurrency 2) and download+callback (threads, "
               f"{IO_THREADS}), shipped poll "
               f"settings (first poll after 5 s, then within [2 s, 30 s]); "
               + ("one private Redis for broker and job store" if broker == "redis" else
                  f"RabbitMQ ({broker.removeprefix('rabbitmq-')} queues, a vhost of its own) as broker, a private "
                  "Redis as job store")
               + ("; the workers started once every job was queued" if hold else "")
               + f"; one sandbox. Before the run, batches of {CALIBRATION_BATCHES[0]} and {CALIBRATION_BATCHES[1]} "
               "jobs with an instant upstream, on workers of their own that poll at once, price one more job for "
               "the ideal."),
        table=harness.table(["measure", "value"], rows),
        notes=notes,
    )


def _start_workers(srv: harness.Servers, env: dict[str, str], suffix: str) -> tuple[harness.Worker, harness.Worker]:
    """The recommended layout: submit+poll on prefork, download+callback on threads."""
    sp = srv.start_worker(env, f"scale-submit-poll{suffix}", queues="submit,poll", concurrency=2)
    dl = srv.start_worker(env, f"scale-download{suffix}", queues="download,callback", concurrency=IO_THREADS,
                          pool="threads")
    return sp, dl


def _calibrate(srv: harness.Servers, env: dict[str, str], queue: SongQueue) -> tuple[float, list[float]]:
    """Seconds one more job costs idle workers, and the two spans it comes from: a batch of
    each of CALIBRATION_BATCHES with an instant upstream, first submit to last SUCCEEDED, on
    workers of their own in the same layout, stopped afterwards. They poll at once
    (POLL_INITIAL_DELAY=0): behind the shipped 5 s first-poll delay a batch's submits hide
    in the wait, and the slope missed their cost (7.6 ms a job where it is about twice that).
    The slope between the spans cancels what every batch takes whatever its size. Measured
    before the run, so the ideal does not come from the run's own (loaded) task times."""
    workers = _start_workers(srv, {**env, "SONGQUEUE_POLL_INITIAL_DELAY": "0"}, "-calibrate")
    spans = []
    for size in CALIBRATION_BATCHES:
        ids = harness.submit_jobs(queue, [harness.prompt(f"calibrate {size} {i}", gen_time=0) for i in range(size)])
        records = _wait_all(queue, ids)
        if any(r.state != JobState.SUCCEEDED for r in records):
            raise RuntimeError("a calibration job did not succeed: the per-job cost would be wrong")
        spans.append(harness.makespan(records))
    for worker in workers:
        srv.stop_worker(worker)
    small, large = CALIBRATION_BATCHES
    return (spans[1] - spans[0]) / (large - small), spans


def _wait_all(queue: SongQueue, ids: list[str]) -> list[JobRecord]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        records = harness.load_records(queue.store, ids)
        if len(records) == len(ids) and all(r.state.terminal for r in records):
            return records
        time.sleep(0.2)
    raise RuntimeError("calibration jobs did not end within 600 s")


def _slowest_stage(jobs: int, sp_runs: list[tuple[str, str, float | None]],
                   dl_runs: list[tuple[str, str, float | None]]) -> str:
    """The stage with the most task time in the run: each worker's summed task runtime divided
    by its concurrency (prefork) or taken whole (threads share the GIL, so their runtimes overlap)."""
    sp_work = sum(r or 0.0 for _, _, r in sp_runs) / 2
    dl_work = sum(r or 0.0 for _, _, r in dl_runs) / IO_THREADS
    stage, work = max((("submit+poll", sp_work), ("download", dl_work)), key=lambda item: item[1])
    return f"{stage}, {fmt(work, 0)} s of task time for {jobs:,} jobs"


def _rows(section: Section) -> list[list[str]]:
    """The (measure, value) rows back out of a section's markdown table."""
    return [line.strip("| ").split(" | ") for line in section.table.splitlines()[2:]]


# The rows that differ by broker; the rest (completed, lost, twice) must read the same.
COMPARED = ("completed", "submitted twice", "makespan (", "peak messages", "peak countdowns", "submit+poll worker",
            "download+callback worker", "broker memory", "Redis used_memory_peak")


def compare(jobs: int, gen: float, amqp_url: str, **settings: object) -> Section:
    """The same run on each of BROKERS, one column each."""
    started = time.monotonic()
    runs = {b: run(False, jobs, gen, broker=b, amqp_url=amqp_url, **settings) for b in BROKERS}
    by_broker = {b: dict((m, v) for m, v in _rows(sec)) for b, sec in runs.items()}
    measures = [m for m, _ in _rows(runs["redis"]) if m.strip("*").startswith(COMPARED)]
    return Section(
        title="Scale by broker",
        setup=f"{jobs:,} jobs at once, generation {fmt(gen, 0)} s, the Scale setup on each broker in turn "
              f"(RabbitMQ in a vhost of its own, Redis as job store)"
              + "".join(f", SONGQUEUE_{k.upper()}={v}" for k, v in settings.items())
              + ". Machine load average at the end: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        table=harness.table(["measure", *BROKERS], [[m, *(by_broker[b].get(m, "–") for b in BROKERS)]
                                                     for m in measures]),
        notes=[n for sec in runs.values() for n in sec.notes[2:3]],
        seconds=time.monotonic() - started,
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="the scale benchmark alone, at any size")
    parser.add_argument("--jobs", type=int, default=FULL[0])
    parser.add_argument("--gen", type=float, default=None, help="generation seconds (default: 1 per 25 jobs, >= 30)")
    parser.add_argument("--broker", choices=BROKERS, default="redis")
    parser.add_argument("--compare", action="store_true", help="run on each broker in turn, one table")
    parser.add_argument("--amqp", default=rabbitmq.DEFAULT_URL, help="RabbitMQ URL (a vhost is made under it)")
    parser.add_argument("--hold", action="store_true",
                        help="stop the workers while the jobs are submitted; measure the drain once all are queued")
    parser.add_argument("--tracemalloc", metavar="DIR", default="",
                        help="the workers dump their top allocation sites into DIR (SONGQUEUE_TRACEMALLOC_DIR)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a SONGQUEUE_ setting of the workers, without the prefix (repeatable)")
    args = parser.parse_args()
    gen = args.gen or max(30.0, args.jobs / 25)
    extra: dict[str, object] = dict(item.split("=", 1) for item in args.set)
    if args.tracemalloc:
        extra["tracemalloc_dir"] = args.tracemalloc
    if args.compare:
        print(compare(args.jobs, gen, args.amqp, **extra).render())
    else:
        print(run(quick=False, jobs=args.jobs, gen=gen, broker=args.broker, amqp_url=args.amqp, hold=args.hold,
                  **extra).render())
