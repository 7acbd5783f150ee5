"""Scale: thousands of jobs in flight at once; none lost, none submitted twice, and what
it costs in worker and Redis memory.

All jobs are submitted at once through `SongQueue.submit`; the generation time is scaled
down (GEN seconds instead of Udio's minutes) but long enough that every job is waiting on
the upstream at the same time. Two workers, as a deployment would split them: one on
submit+poll, one on download, concurrency 2 each, shipped poll settings.

Countdown (poll) messages are held by the worker that fetched them until due, and
acks_late keeps them in the broker's `unacked` hash meanwhile: the peak of that hash and
the submit+poll worker's main-process memory show what that costs. We observe it only;
worker configuration (e.g. Celery's `worker_eta_task_limit`) is left as shipped.
"""

from __future__ import annotations

import time

import redis

from bench import harness
from bench.harness import Section, fmt
from producer.models.job_record import TERMINAL_STATES, JobState

LIVE = [s for s in JobState if s not in TERMINAL_STATES]
WAITING = [JobState.SUBMITTED, JobState.GENERATING]
# (jobs, generation seconds); the full size is reduced from 10,000 to fit `make bench` in
# about 30 minutes on 2 cores (see the Section notes).
QUICK = (500, 30.0)
FULL = (2000, 90.0)
TARGET_FULL = 10_000


def run(quick: bool, jobs: int | None = None, gen: float | None = None) -> Section:
    """`jobs` and `gen` override the preset sizes (python -m bench.scale --jobs N)."""
    preset = jobs is None
    default_jobs, default_gen = QUICK if quick else FULL
    jobs = jobs or default_jobs
    gen = gen or default_gen
    with harness.servers("scale", "--song-duration", "1") as srv:
        env = srv.env()
        sp = srv.start_worker(env, "scale-submit-poll", queues="submit,poll", concurrency=2)
        dl = srv.start_worker(env, "scale-download", queues="download", concurrency=2)
        queue = harness.producer(env)
        sp_start, dl_start = sp.memory(), dl.memory()
        broker = redis.Redis.from_url(env["SONGQUEUE_BROKER_URL"])
        peak = {"open": 0, "waiting": 0, "unacked": 0, "backlog": 0}

        def sample() -> None:
            pipe = broker.pipeline(transaction=False)
            pipe.hlen("unacked")
            for name in ("submit", "poll", "download"):
                pipe.llen(name)
            unacked, *queued = pipe.execute()
            peak["open"] = max(peak["open"], harness.count_states(queue.store, LIVE))
            peak["waiting"] = max(peak["waiting"], harness.count_states(queue.store, WAITING))
            peak["unacked"] = max(peak["unacked"], unacked)
            peak["backlog"] = max(peak["backlog"], sum(queued))

        prompts = [harness.prompt(f"scale {i}", gen_time=gen) for i in range(jobs)]
        ids: list[str] = []
        t0 = time.monotonic()
        for start in range(0, jobs, 250):
            ids += harness.submit_jobs(queue, prompts[start:start + 250])
            sample()
        submit_seconds = time.monotonic() - t0
        harness.wait_for_jobs(queue.store, jobs, timeout=3600, stall=180, on_sample=sample, interval=0.5)
        sp_mem, dl_mem = sp.memory(), dl.memory()
        info = srv.redis_info()
        records = harness.load_records(queue.store, ids)
        stats = srv.sandbox_stats()
        runs = len(sp.runs()) + len(dl.runs())

    counts = harness.state_counts(records)
    done = counts.get(JobState.SUCCEEDED.value, 0)
    failed = sum(counts.get(s.value, 0) for s in TERMINAL_STATES if s != JobState.SUCCEEDED)
    lost = jobs - done - failed
    by_prompt = stats["submits_by_prompt"]
    twice = sum(1 for p in prompts if by_prompt.get(p, 0) > 1)
    never = sum(1 for p in prompts if by_prompt.get(p, 0) == 0)
    span = harness.makespan(records)
    peak_mib = info["used_memory_peak"] / 2**20
    rows = [
        ["jobs submitted", f"{jobs:,} in {fmt(submit_seconds, 1)} s ({fmt(jobs / submit_seconds, 0)} jobs/s "
                           f"through `SongQueue.submit`)"],
        ["peak jobs open (not terminal) / waiting on the upstream", f"{peak['open']:,} / {peak['waiting']:,}"],
        ["**completed / failed / lost**", f"**{done:,} / {failed:,} / {lost:,}**"],
        ["**submitted twice upstream** / never submitted", f"**{twice:,}** / {never:,}"],
        ["makespan (first submit to last SUCCEEDED)", f"{fmt(span, 0)} s ({fmt(done / span)} jobs/s)"],
        ["task runs per job (both workers' logs)", fmt(runs / jobs, 1)],
        ["median poll runs per job", fmt(harness.median(r.attempts.get("poll", 0) for r in records), 1)],
        ["peak messages held by workers, unacked (countdowns + running)", f"{peak['unacked']:,}"],
        ["peak messages waiting in the queues (submit+poll+download)", f"{peak['backlog']:,}"],
        ["submit+poll worker peak RSS MiB", f"{sp_mem.describe()} (at start: pool {fmt(sp_start.child_peak, 0)})"],
        ["download worker peak RSS MiB", f"{dl_mem.describe()} (at start: pool {fmt(dl_start.child_peak, 0)})"],
        ["Redis used_memory_peak", f"{fmt(peak_mib, 1)} MiB ({fmt(info['used_memory_peak'] / jobs / 1024, 1)} KiB "
                                   f"per job; {fmt(info['used_memory'] / 2**20, 1)} MiB at the end)"],
    ]
    notes = [
        "Lost = neither SUCCEEDED nor FAILED/TIMED_OUT/CANCELLED when the run ended (no job ended for 180 s, "
        "or an hour passed). Submitted twice = the sandbox's submits_by_prompt > 1 for a job's unique prompt.",
        "A worker holds every countdown (poll) message it has fetched until it is due (Celery raises its "
        f"prefetch for each ETA message), in its main process; at most {peak['unacked']:,} messages were held "
        f"at once here, while up to {peak['backlog']:,} waited in the queues"
        + (" (the workers' throughput, not their memory, bounded what they held)"
           if peak["backlog"] > peak["unacked"] else "")
        + ". `worker_eta_task_limit` (Celery 5.6+) would bound the held messages; it is not set.",
        f"Pool children: submit+poll worker {fmt(sp_start.child_peak, 0)} -> {fmt(sp_mem.child_peak, 0)} MiB, "
        f"download worker {fmt(dl_start.child_peak, 0)} -> {fmt(dl_mem.child_peak, 0)} MiB (peak resident, "
        "from start to end of the run).",
        "Redis holds the job records (with their transitions and songs), the state indexes, the queues and "
        "the unacked messages; finished records stay (no expiry yet), so `used_memory` at the end is the "
        "cost of keeping finished jobs.",
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
        title="Scale",
        setup=(f"{jobs:,} jobs submitted at once, generation time {fmt(gen, 0)} s (scaled down from minutes), "
               f"1 s songs. Workers: submit+poll (concurrency 2) and download (concurrency 2), shipped poll "
               f"settings (first poll after 5 s, then within [2 s, 30 s]); one private Redis for broker and "
               f"job store; one sandbox."),
        table=harness.table(["measure", "value"], rows),
        notes=notes,
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="the scale benchmark alone, at any size")
    parser.add_argument("--jobs", type=int, default=FULL[0])
    parser.add_argument("--gen", type=float, default=None, help="generation seconds (default: 1 per 25 jobs, >= 30)")
    args = parser.parse_args()
    print(run(quick=False, jobs=args.jobs, gen=args.gen or max(30.0, args.jobs / 25)).render())
