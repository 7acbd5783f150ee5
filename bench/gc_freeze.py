"""Does `gc.freeze()` in forked pool children pay (SONGQUEUE_GC_FREEZE, workers/diagnostics.py)?

The parent builds the heap a worker's pool children inherit (the worker's Celery app and
task modules) and a Celery tracer for a task that retries by countdown. Then it forks pool
children, alternating the two variants, as prefork does:

- **baseline**: the child runs as Celery leaves it;
- **gc.freeze()**: the child first runs the hook (`gc.collect(); gc.freeze()`).

Each child measures, from /proc/self/smaps_rollup, what it was meant to save:

- **copy-on-write**: the child's unique memory (USS = Private_Clean + Private_Dirty) and
  PSS right after the start hook and one full collection, before any task: how many of
  the inherited pages the collector (and the hook itself) made private;
- **retry garbage**: USS after R countdown retries through Celery's tracer (each builds
  an exception record in reference cycles) and a full collection;
- **collector pauses**: every collection's duration during the retries (gc.callbacks),
  the median and the longest of the full (generation 2) ones, how many there were, and
  how long the explicit full collection at the end took (it walks what is not frozen).

Medians over the children of each variant; the load average at the start is printed, and a
run that starts with a 1-minute load average above MAX_LOAD is marked VOID (other work on
the machine makes the timings and even the memory figures unreliable).

    python -m bench.gc_freeze [--children 5] [--retries 500]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

MAX_LOAD = 1.0
VARIANTS = ("baseline", "gc.freeze()")


def smaps_kib() -> dict[str, int]:
    """This process's /proc/self/smaps_rollup, in KiB."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        fields[name] = int(rest.split()[0])
    return fields


def _uss_pss() -> tuple[float, float]:
    s = smaps_kib()
    return (s["Private_Clean"] + s["Private_Dirty"]) / 1024, s["Pss"] / 1024


def _tracer() -> Any:
    """The worker's heap (what a pool child inherits) and a tracer for a task that retries."""
    import celery.canvas
    from celery.app.trace import build_tracer

    from workers.celery_app import app
    from workers.tasks import download, poll, submit  # noqa: F401 - the heap a real child inherits

    celery.canvas.Signature.apply_async = lambda self, *a, **k: None  # no broker needed to measure

    @app.task(bind=True, name="bench.gc_freeze")
    def again(self):  # type: ignore[no-untyped-def]
        raise self.retry(countdown=5)

    return build_tracer(again.name, again, eager=False, propagate=False, app=app)


def child(variant: str, tracer: Any, retries: int) -> dict[str, float]:
    """In a forked child: the start hook (or not), then the measurements."""
    from workers import diagnostics

    started = time.perf_counter()
    if variant == "gc.freeze()":
        diagnostics.freeze_heap()
    hook_ms = (time.perf_counter() - started) * 1000
    gc.collect()
    uss_start, pss_start = _uss_pss()

    pauses: list[tuple[int, float]] = []
    began: list[float] = []

    def timing(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            began.append(time.perf_counter())
        elif began:
            pauses.append((info["generation"], (time.perf_counter() - began.pop()) * 1000))

    gc.callbacks.append(timing)
    request = {"id": "r", "retries": 0, "delivery_info": {}, "hostname": "bench"}
    cpu = time.process_time()
    for i in range(retries):
        tracer(str(i), (), {}, request)
    cpu_ms = (time.process_time() - cpu) / retries * 1000
    gc.callbacks.remove(timing)
    collect = time.perf_counter()
    gc.collect()
    collect_ms = (time.perf_counter() - collect) * 1000
    uss_end, pss_end = _uss_pss()
    full = [ms for generation, ms in pauses if generation == 2]
    return {"hook_ms": hook_ms, "uss_start": uss_start, "pss_start": pss_start, "uss_end": uss_end,
            "pss_end": pss_end, "full_collections": len(full),
            "full_pause_ms": statistics.median(full) if full else 0.0, "max_pause_ms": max(full, default=0.0),
            "gc_ms_total": sum(ms for _, ms in pauses), "collect_ms": collect_ms, "cpu_ms": cpu_ms}


def fork_child(variant: str, tracer: Any, retries: int) -> dict[str, float]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, write one JSON line, leave without cleanup
        os.close(read)
        try:
            os.write(write, json.dumps(child(variant, tracer, retries)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as out:
        data = out.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def main(children: int, retries: int) -> int:
    load = os.getloadavg()
    void = load[0] > MAX_LOAD
    tracer = _tracer()
    gc.collect()
    inherited = len(gc.get_objects())
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for _ in range(children):
        for variant in VARIANTS:  # alternated, so drift in the machine's load hits both alike
            results[variant].append(fork_child(variant, tracer, retries))

    def med(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in results[variant])

    print(f"gc.freeze in forked pool children: {children} children per variant, {retries} countdown retries each, "
          f"{inherited:,} objects inherited")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in load)}"
          + (f"  VOID: 1-minute load above {MAX_LOAD}, figures not reported as results" if void else ""))
    columns = [("hook ms", "hook_ms", 1), ("USS MiB after start+GC", "uss_start", 1),
               ("PSS MiB after start+GC", "pss_start", 1), ("USS MiB after retries+GC", "uss_end", 1),
               ("PSS MiB after retries+GC", "pss_end", 1), ("full GCs", "full_collections", 0),
               ("full GC pause ms (median)", "full_pause_ms", 2), ("longest full GC ms", "max_pause_ms", 2),
               ("GC ms total", "gc_ms_total", 1), ("final gc.collect() ms", "collect_ms", 2),
               ("CPU ms a retry", "cpu_ms", 2)]
    print()
    print("| median of children | " + " | ".join(VARIANTS) + " | freeze/baseline |")
    print("|---|" + "---|" * (len(VARIANTS) + 1))
    for title, key, digits in columns:
        base, frozen = med("baseline", key), med("gc.freeze()", key)
        ratio = f"{frozen / base:.2f}" if base >= 0.01 else "-"
        print(f"| {title} | {base:.{digits}f} | {frozen:.{digits}f} | {ratio} |")
    if void:
        print("\nVOID: the machine was busy at the start; measure again when the 1-minute load is below "
              f"{MAX_LOAD}.")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=5)
    parser.add_argument("--retries", type=int, default=500)
    args = parser.parse_args()
    raise SystemExit(main(args.children, args.retries))
