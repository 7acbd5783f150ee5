"""Uncertain submits reconciled by the notify hook: outcome, upstream submits and time per job.

The same Udio jobs on one worker (concurrency 2), real time, four runs:
- no fault, hook on: the baseline (submit to SUCCEEDED of a job whose answer arrived);
- answer lost (`submit_accept_502`), no hook: what songqueue did before the hook
  reconciled anything (FAILED `submit_uncertain`, as SONGQUEUE_UNCERTAIN_SUBMIT=fail says);
- answer lost (`submit_accept_502`), hook on;
- connection dropped after the gateway accepted (`submit_accept_drop`), hook on.

The hook runs point SONGQUEUE_NOTIFY_HOOK_URL at a `songqueue hooks` process with
SONGQUEUE_CALLBACK_SECRET set, so each submit carries its job's signed URL and the sandbox
calls it on the task's status changes. Upstream submits per job come from the sandbox's
count per prompt; "to SUBMITTED" is the job's SUBMITTING -> SUBMITTED time (the paid call,
plus, when the answer was lost, the wait for the hook).
"""

from __future__ import annotations

from bench import harness
from bench.harness import Section, fmt, median
from bench.notify_hook import start_hooks
from producer.core.models.job_record import JobState

SECRET = "bench-notify-secret"
# name -> (directive, with the hook)
RUNS = {
    "no fault, hook on (baseline)": ("", True),
    "answer lost (502), no hook": ("submit_accept_502", False),
    "answer lost (502), hook on": ("submit_accept_502", True),
    "connection dropped, hook on": ("submit_accept_drop", True),
}
GEN_TIME = 6.0


def run(quick: bool) -> Section:
    per = 4 if quick else 12
    rows = []
    notes = []
    base_end = float("nan")
    with harness.servers("reconcile", "--song-duration", "1") as srv:
        for name, (fault, hook) in RUNS.items():
            port = harness.stack.free_port()
            settings: dict[str, object] = {"CALLBACK_SECRET": SECRET}
            if hook:
                settings["NOTIFY_HOOK_URL"] = f"http://127.0.0.1:{port}/hooks/udio"
            env = srv.env(**settings)
            hooks = start_hooks(env, port, srv.tmp / f"hooks-{port}.log") if hook else None
            try:
                worker = srv.start_worker(env, f"reconcile-{port}", concurrency=2)
                queue = harness.producer(env)
                directives: dict[str, object] = {"gen_time": GEN_TIME}
                prompts = [harness.prompt(f"reconcile {i}", **directives) + (f" sandbox:{fault}" if fault else "")
                           for i in range(per)]
                ids = harness.submit_jobs(queue, prompts)
                harness.wait_for_jobs(queue.store, len(ids), timeout=180)
                srv.stop_worker(worker)
            finally:
                harness.stack.stop(hooks)
            stats = srv.sandbox_stats()
            records = harness.load_records(queue.store, ids)
            ends: dict[str, int] = {}
            for record in records:
                end = record.state.value + (f" `{record.error.code}`" if record.error else "")
                ends[end] = ends.get(end, 0) + 1
            submits = [stats["submits_by_prompt"].get(p, 0) for p in prompts]
            tasks = {info["prompt"]: task for task, info in stats["tasks"].items()}
            hook_calls = [stats["hooks_by_task"].get(tasks.get(p, ""), 0) for p in prompts]
            to_submitted = [b - a for r in records
                            if (a := harness.entered(r, JobState.SUBMITTING)) is not None
                            and (b := harness.entered(r, JobState.SUBMITTED)) is not None]
            to_end = [e - r.created_at for r in records if (e := harness.entered(r, JobState.SUCCEEDED)) is not None]
            rows.append([name, len(records), ", ".join(f"{n} {end}" for end, n in sorted(ends.items())),
                         f"{sum(submits) / len(prompts):.2f} (max {max(submits)})", fmt(median(hook_calls), 0),
                         fmt(median(to_submitted), 2), fmt(median(to_end), 2)])
            if len(rows) == 1:
                base_end = median(to_end)
            elif fault and hook:
                notes.append(f"{name}: submit to SUCCEEDED {fmt(median(to_end), 2)} s median, "
                             f"{median(to_end) / base_end:.2f}x the baseline's {fmt(base_end, 2)} s.")
    notes += [
        "Each reconciled job waited for the sandbox's first hook call (IN_PROGRESS, at 5 % of the "
        f"{GEN_TIME:g} s generation), then was polled like any; no job was submitted twice.",
        "A reconciled job is not slower end to end: its first poll is counted from SUBMITTED, which comes "
        "later, nearer the finish the poll schedule aims at, so it spends fewer polls waiting.",
        "Without the hook a lost answer ends the job at once (FAILED `submit_uncertain`, paid but "
        "without songs); with it, the same jobs succeed after one paid submit.",
    ]
    return Section(
        title="Uncertain submits reconciled by the notify hook",
        setup=(f"{per} Udio jobs per run submitted at once to one worker (concurrency 2), real time, "
               f"{GEN_TIME:g} s generation, 1 s songs; hook runs with a `songqueue hooks` process and "
               "SONGQUEUE_CALLBACK_SECRET set (signed per-job notify URLs); SONGQUEUE_UNCERTAIN_HOOK_WAIT "
               "at its default (600 s)."),
        table=harness.table(["run", "jobs", "ended", "upstream submits/job", "hook calls/job (median)",
                             "SUBMITTING to SUBMITTED median s", "submit to SUCCEEDED median s"], rows),
        notes=notes,
    )
