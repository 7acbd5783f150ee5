"""Pool-child growth: what Celery's retry path leaves for the cyclic garbage collector, with
and without `gc.freeze()` of the inherited heap (workers/diagnostics.py).

Each countdown retry (every poll is one) makes Celery build a billiard `ExceptionInfo`: the
traceback's frames copied with, on Python 3.11, every instruction position of each frame's
code object, in reference cycles (exception -> traceback -> frame -> einfo -> exception)
that only the cyclic collector frees. A pool child inherits the worker's whole heap (about
75,000 tracked objects), and Python runs a full collection only once the objects that
survived into the oldest generation grow by 25 % of that: garbage piles up between full
collections, the allocator grows to hold it, and keeps the pages afterwards.

Runs the worker's own app in a fresh process per variant (the same N retries through
Celery's tracer; no broker: the retry's send is stubbed, the rest is Celery's code), and
reports resident memory before and after, full collections and CPU per retry.

    python -m bench.retry_garbage [--retries 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Section, fmt, table

ROOT = Path(__file__).resolve().parents[1]


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(variant: str, retries: int) -> dict[str, float]:
    """In a fresh process: the worker app's heap, then `retries` retries through Celery's tracer."""
    import gc

    import celery.canvas
    from celery.app.trace import build_tracer

    from workers import diagnostics
    from workers.celery_app import app
    from workers.tasks import download, poll, submit  # noqa: F401 - the heap a real child inherits

    celery.canvas.Signature.apply_async = lambda self, *a, **k: None  # no broker needed to measure

    @app.task(bind=True, name="bench.retry_garbage")
    def again(self):  # type: ignore[no-untyped-def]
        raise self.retry(countdown=5)

    if variant == "gc.freeze()":
        diagnostics.freeze_heap()
    tracer = build_tracer(again.name, again, eager=False, propagate=False, app=app)
    request = {"id": "r", "retries": 0, "delivery_info": {}, "hostname": "bench"}
    start, cpu = _rss_mib(), time.process_time()
    for i in range(retries):
        tracer(str(i), (), {}, request)
    return {"rss_start": start, "rss_end": _rss_mib(), "cpu_ms": (time.process_time() - cpu) / retries * 1000,
            "full_collections": gc.get_stats()[2]["collections"]}


def run(quick: bool, retries: int | None = None) -> Section:
    retries = retries or (500 if quick else 2000)
    rows, results = [], {}
    for variant in ("as Celery leaves it", "gc.freeze()"):
        out = subprocess.run([sys.executable, "-m", "bench.retry_garbage", "--child", variant, "--retries", str(retries)],
                             cwd=ROOT, capture_output=True, text=True, timeout=1800, check=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        results[variant] = r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append([variant, f"{fmt(r['rss_start'], 0)} -> {fmt(r['rss_end'], 0)}",
                     fmt(r["rss_end"] - r["rss_start"], 0), fmt(r["full_collections"], 0), fmt(r["cpu_ms"], 2)])
    base, frozen = results["as Celery leaves it"], results["gc.freeze()"]
    return Section(
        title="Pool-child growth: retry garbage",
        setup=f"{retries:,} countdown retries through Celery's tracer in one process holding the worker's heap; "
              f"each variant in a fresh process. Load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        table=table(["child", "RSS MiB start -> end", "growth MiB", "full collections", "CPU ms a retry"], rows),
        notes=[f"Growth ratio frozen/baseline: "
               f"{fmt((frozen['rss_end'] - frozen['rss_start']) / max(0.1, base['rss_end'] - base['rss_start']))}; "
               f"CPU a retry {fmt(frozen['cpu_ms'] / base['cpu_ms'])} of the baseline."],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retries", type=int, default=2000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.retries)))
    else:
        print(run(False, args.retries).render())
