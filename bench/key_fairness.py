"""Key fairness: N jobs parked behind one API key's in-flight limit of 1, and another key's
job meanwhile, against the same job on an idle system measured in the same run.

- Idle: key B (no limit) submits SAMPLES jobs one after another on an empty system; each
  one's latency is created -> SUCCEEDED (from its record).
- Loaded: key A (`max_in_flight=1`) submits N jobs; the first holds A's one place (a long
  generation), the other N-1 park (producer/core/store/parking.py). Once all are parked,
  submit task runs are counted from the worker's log over a window (runs/s while parked),
  and key B submits the same SAMPLES jobs one after another again.
- Before parking, each waiting job re-ran its submit task every SONGQUEUE_LIMIT_WAIT x
  1.0-1.5 (jitter) seconds: N / (LIMIT_WAIT x 1.25) runs/s, computed for comparison.
"""

from __future__ import annotations

import time

from bench import harness
from bench.harness import Section, fmt, median
from producer import UdioRequest
from producer.core.models.job_record import JobState
from producer.core.store import keys
from producer.core.store.api_keys import KeyStore

CONCURRENCY = 2
LIMIT_WAIT = 5.0  # the shipped SONGQUEUE_LIMIT_WAIT the old countdown used
GEN = 1.0  # key B's jobs: seconds of sandbox generation


def run(quick: bool) -> Section:
    parked = 1_000 if quick else 10_000
    samples = 5 if quick else 15
    window = 10.0 if quick else 30.0
    with harness.servers("key-fairness", "--song-duration", "2") as srv:
        env = srv.env(POLL_INITIAL_DELAY=0.5, POLL_MIN_INTERVAL=0.5)
        worker = srv.start_worker(env, "key-fairness", concurrency=CONCURRENCY)
        queue = harness.producer(env)
        store = KeyStore(queue.store.redis, queue.settings.key_prefix)
        busy, _ = store.create("busy", "busy", ["submit", "read"], max_in_flight=1, max_queued=10**9)
        other, _ = store.create("other", "other", ["submit", "read"])

        def follow_other(label: str) -> list[float]:
            out = []
            for i in range(samples):
                job = queue.submit(UdioRequest(prompt=harness.prompt(f"{label} {i}", gen_time=GEN),
                                               lyrics_type="instrumental"), tenant=other.tenant, api_key=other.id)
                record = queue.wait(job.id, timeout=300)
                if record.state is not JobState.SUCCEEDED:
                    raise RuntimeError(f"key B's job {job.id} ended {record.state.value}")
                out += harness.latencies([record])
            return out

        idle = follow_other("idle")
        queue.submit(UdioRequest(prompt=harness.prompt("holder", gen_time=3600), lyrics_type="instrumental"),
                     tenant=busy.tenant, api_key=busy.id)
        for i in range(parked - 1):
            queue.submit(UdioRequest(prompt=harness.prompt(f"parked {i}"), lyrics_type="instrumental"),
                         tenant=busy.tenant, api_key=busy.id)
        park_queue = keys.parked(keys.key_in_flight(queue.settings.key_prefix, busy.id))
        deadline = time.monotonic() + 120 + parked * 0.05
        while queue.store.redis.zcard(park_queue) < parked - 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {queue.store.redis.zcard(park_queue)} of {parked - 1} jobs parked")
            time.sleep(0.5)
        before = _submit_runs(worker)
        started = time.monotonic()
        loaded = follow_other("loaded")
        remaining = window - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)  # the counting window, not a synchronisation
        runs_per_s = (_submit_runs(worker) - before) / (time.monotonic() - started)
        still_parked = int(queue.store.redis.zcard(park_queue))
        srv.stop_worker(worker)

    # Key B's own submits run in the window: one each (no limit holds them).
    polled = (parked - 1) / (LIMIT_WAIT * 1.25)
    ratio = median(loaded) / median(idle)
    rows = [
        ["key B's job, idle system (baseline)", samples, fmt(median(idle), 2), "1.00", "–"],
        [f"key B's job, {parked - 1:,} of key A's jobs parked", samples, fmt(median(loaded), 2), fmt(ratio),
         fmt(runs_per_s, 1)],
        [f"countdown polling, computed: {parked - 1:,} / ({LIMIT_WAIT:g} s x 1.25)", "–", "–", "–", fmt(polled, 0)],
    ]
    return Section(
        title="Key fairness (parked jobs)",
        setup=(f"{parked:,} jobs of key A (`max_in_flight=1`; the first generates for an hour, the other "
               f"{parked - 1:,} are parked), key B's jobs ({fmt(GEN, 0)} s generation) one after another; one worker "
               f"process, concurrency {CONCURRENCY}, all queues; submit task runs counted over {fmt(window, 0)} s "
               "from the worker's log, key B's own submits included."),
        table=harness.table(["run", "key B jobs", "median submit -> SUCCEEDED s", "vs idle",
                             "submit task runs/s while parked"], rows),
        notes=[
            f"ratio = median(loaded) / median(idle) = {fmt(median(loaded), 2)} / {fmt(median(idle), 2)} = "
            f"{fmt(ratio)}; {still_parked:,} of key A's jobs were still parked at the end (none was polled).",
            "Runs/s while parked counts every submit task run in the window: key B's own submits "
            f"({samples}) and none of key A's parked jobs.",
        ],
    )


def _submit_runs(worker: harness.Worker) -> int:
    return sum(1 for name, _, _ in worker.runs() if name.endswith(".submit"))
