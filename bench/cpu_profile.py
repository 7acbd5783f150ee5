"""Where a task run's CPU goes: the pipeline benchmark's jobs (instant upstream) on one
worker whose main process and pool children run under cProfile (bench/profile_hook), then
the CPU per job of each and the functions that cost most.

    python -m bench.cpu_profile [--jobs 100] [--top 25]

Not part of `make bench` (the profiler slows the worker about twofold; read shares, not
absolute times). Without the profiler, CPU per job is what `pipeline_overhead` reports.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import pstats
import tempfile
from pathlib import Path

from bench import harness, pipeline_overhead

HOOK = Path(__file__).resolve().parent / "profile_hook"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    out = tempfile.mkdtemp(prefix="songqueue-cpu-profile-")
    # The workers inherit os.environ (all but SONGQUEUE_* settings, which the harness sets).
    os.environ["SQ_BENCH_PROFILE_DIR"] = out
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HOOK), os.environ.get("PYTHONPATH", "")]))
    with harness.servers("cpu-profile", "--generation-time", "0", "--song-duration", "1") as srv:
        _, _, runs, cpu = pipeline_overhead._jobs(srv, 1, args.jobs)
    print(f"{args.jobs} jobs, {runs:.2f} task runs per job, worker CPU {cpu * 1000:.1f} ms per job (profiled)")
    for kind in ("main", "child"):
        files = glob.glob(os.path.join(out, f"{kind}-*.prof"))
        if not files:
            continue
        text = io.StringIO()
        stats = pstats.Stats(*files, stream=text)
        print(f"\n## {kind} process{'es' if kind == 'child' else ''}: {stats.total_tt / args.jobs * 1000:.1f} ms "
              f"of profiled CPU per job; by cumulative time")
        stats.sort_stats("cumulative").print_stats(args.top)
        print(text.getvalue().strip())
    print(f"profiles kept in {out} (python -m pstats FILE)")


if __name__ == "__main__":
    main()
