"""Notify hook: detection lag and upstream fetch calls per job, with and without the hook.

Three runs of the same jobs on one worker (concurrency 2), real time (no scaling: the
hook's lag is HTTP and worker latency, which scaling would distort):
- polling only: the shipped poll schedule (first poll after 5 s, then within [2 s, 30 s]);
- hook + shipped polling: the sandbox calls `songqueue hooks` (a real process) on every
  status change, as the gateways do, and the hook sends one one-shot poll at the end;
- hook + relaxed polling: the same, with polling as a rare fallback (first poll after
  60 s, then within [2 s, 120 s]): what the hook lets an operator save.

- calls: the sandbox's count of fetches of the job's upstream task (one-shot polls included).
- lag: from the upstream's finish (the sandbox's `finished_at`) to the job's DOWNLOADING
  transition.
Generation times are spread +-10 % around each nominal value, the same for every run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench import harness
from bench.harness import Section, fmt, median, quantile
from producer.core.models.job_record import JobState

# name -> (poll initial delay, min interval, max interval, with the hook)
RUNS = {
    "polling only (shipped schedule)": (5.0, 2.0, 30.0, False),
    "hook + shipped polling": (5.0, 2.0, 30.0, True),
    "hook + relaxed polling (60 s / 120 s)": (60.0, 2.0, 120.0, True),
}


def start_hooks(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """`songqueue hooks` on `port`; returns once it listens."""
    proc = subprocess.Popen([harness.stack.PYTHON, "-m", "producer.cli.main", "hooks", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, cwd=harness.ROOT)
    line = proc.stdout.readline() if proc.stdout else ""
    if "hooks listening on" not in line:
        harness.stack.stop(proc)
        raise RuntimeError(f"songqueue hooks did not start: {line!r}; see {log}")
    return proc


def run(quick: bool) -> Section:
    nominal = (20.0,) if quick else (20.0, 60.0)
    per = 4 if quick else 10
    results: dict[tuple[float, str], tuple[list[int], list[float], list[int]]] = {}
    with harness.servers("hook", "--song-duration", "1") as srv:
        for name, (initial, low, high, hook) in RUNS.items():
            port = harness.stack.free_port()
            settings = {"POLL_INITIAL_DELAY": initial, "POLL_MIN_INTERVAL": low, "POLL_MAX_INTERVAL": high}
            if hook:
                settings["NOTIFY_HOOK_URL"] = f"http://127.0.0.1:{port}/hooks/udio"
            env = srv.env(**settings)
            hooks = start_hooks(env, port, srv.tmp / f"hooks-{port}.log") if hook else None
            try:
                worker = srv.start_worker(env, f"hook-{port}", concurrency=2)
                queue = harness.producer(env)
                plan = [(g, g * (0.9 + 0.2 * (i + 0.5) / per)) for i in range(per) for g in nominal]
                ids = harness.submit_jobs(queue, [harness.prompt(f"hook g{g:g}", gen_time=f"{t:.3f}") for g, t in plan])
                harness.wait_for_jobs(queue.store, len(ids), timeout=120 + 2 * max(nominal) + initial)
                srv.stop_worker(worker)
            finally:
                harness.stack.stop(hooks)
            stats = srv.sandbox_stats()
            for (g, _), record in zip(plan, harness.load_records(queue.store, ids), strict=True):
                if record.state != JobState.SUCCEEDED:
                    raise RuntimeError(f"notify hook benchmark, {name}: job {record.id} ended {record.state.value}")
                task = record.upstream_task_id
                calls, lags, hook_calls = results.setdefault((g, name), ([], [], []))
                calls.append(stats["fetches_by_task"].get(task, 0))
                lags.append(harness.entered(record, JobState.DOWNLOADING) - stats["tasks"][task]["finished_at"])
                hook_calls.append(stats["hooks_by_task"].get(task, 0))

    rows = []
    for g in nominal:
        for name in RUNS:
            calls, lags, hook_calls = results[(g, name)]
            rows.append([fmt(g, 0) if name == next(iter(RUNS)) else "", name, fmt(median(calls), 1),
                         fmt(median(lags), 2), fmt(quantile(lags, 0.9), 2), fmt(max(lags), 2),
                         fmt(median(hook_calls), 0)])
    base, relaxed = next(iter(RUNS)), list(RUNS)[-1]
    notes = []
    for g in nominal:
        b_calls, b_lags, _ = results[(g, base)]
        r_calls, r_lags, _ = results[(g, relaxed)]
        notes.append(f"{fmt(g, 0)} s generation: the hook with relaxed polling makes "
                     f"{fmt(median(r_calls), 1)} fetch calls per job instead of {fmt(median(b_calls), 1)} and notices "
                     f"the finish after {fmt(median(r_lags), 2)} s instead of {fmt(median(b_lags), 2)} s (medians).")
    notes += [
        "Hook calls per job: the sandbox POSTs on every status change (IN_PROGRESS, then SUCCESS); "
        "only the final one earns a poll (`producer/api/notify_hook.py`).",
        "Lag = upstream finish (sandbox `finished_at`) to the job's DOWNLOADING transition: with the hook, "
        "the sandbox's POST, the hook process, the broker and one fetch by the worker.",
    ]
    return Section(
        title="Notify hook",
        setup=(f"{per} jobs per generation time and run, all submitted at once to one worker (concurrency 2); "
               f"real time, generation (nominal x 0.9..1.1) s, 1 s songs. The hook runs are the same worker "
               f"with SONGQUEUE_NOTIFY_HOOK_URL pointing at a `songqueue hooks` process that the sandbox calls "
               f"on every status change."),
        table=harness.table(["generation (nominal s)", "run", "fetch calls/job (median)", "lag median s",
                             "lag p90 s", "lag max s", "hook calls/job"], rows),
        notes=notes,
    )
