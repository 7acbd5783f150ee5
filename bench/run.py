"""Run the benchmarks, print their tables, and write them to bench/results/.

    python bench/run.py [--quick] [--only NAME[,NAME...]] [--out PATH] [--keep] [--settle S]
    python bench/run.py --readme     # put the published results into docs/benchmarks.md, run nothing
    python bench/run.py --check      # exit 1 when docs/benchmarks.md differs from the published results
    python bench/run.py --profile NAME [--quick]   # a flame graph of benchmark NAME (py-spy), in bench/results/
    python bench/run.py --long scale-100k   # a run too long for make bench (make bench-100k), published alone

`make bench` runs the full set, `make bench-quick` the same with small parameters. Every
benchmark starts its own Redis, sandbox and workers (deploy/local/stack.py) and measures
its baseline in the same run; nothing here asserts on time.

Discipline (a figure is a figure only if anyone can take it again):
- Before each benchmark the run waits up to `--settle` seconds for the 1-minute load
  average to fall below 1.0 and prints it; a benchmark that still starts above is marked
  void in its section, and a run with a void section publishes nothing.
- Results are published (bench/results/latest-{full,quick}.md, which docs/benchmarks.md is
  generated from) only by a complete run (no --only, no failure) from a clean, committed
  tree, named by its commit; any other run writes bench/results/scratch.md (not tracked)
  and says why it is not published.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402

# Runs too long for `make bench`, each published on its own (bench/results/latest-NAME.md):
# NAME -> (benchmark module, its run() arguments).
LONG_RUNS: dict[str, tuple[str, dict[str, object]]] = {
    # 100,000 jobs waiting at once: all queued before the workers start, so the drain is the measure.
    "scale-100k": ("scale", {"jobs": 100_000, "gen": 30.0, "hold": True}),
}
# In the order they run: the cheap ones first, the long scale run last.
BENCHMARKS = ("pipeline_overhead", "slot_efficiency", "poll_efficiency", "poll_models", "suno_polling", "minimax_hex",
              "notify_hook", "uncertain_reconcile", "http_api", "download", "download_wire", "io_pool", "eta_memory",
              "retention", "retry_garbage", "key_fairness", "scale")
RESULTS = ROOT / "bench" / "results"
SCRATCH = RESULTS / "scratch.md"
PAGE = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def header(quick: bool, info: dict[str, str], long: str = "") -> str:
    mode = (f"`python bench/run.py --long {long}`" if long else
            "`make bench-quick` (small parameters)" if quick else "`make bench` (full parameters)")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        "## Benchmark results",
        "",
        f"Run: {mode}, {when}. Machine: {info['nproc']} cores ({info['cpu']}), {info['memory']} RAM, "
        f"Python {info['python']}, Celery {info['celery']}, redis-server {info['redis-server']}; "
        f"load average at start {info['load']}; commit {info['commit']}.",
        "The machine is shared: numbers are noisy, so read medians and ratios, each against the "
        "baseline measured in the same run.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small parameters (a few minutes)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the markdown here (the published results are written only as the "
                             "module docstring says; everything else goes to bench/results/scratch.md)")
    parser.add_argument("--keep", action="store_true", help="keep temporary folders (logs, Redis data)")
    parser.add_argument("--settle", type=float, default=300.0,
                        help="seconds to wait before each benchmark for the load average to fall below 1.0 "
                             "(default 300)")
    parser.add_argument("--readme", action="store_true",
                        help="run nothing: put bench/results/latest-{full,quick}.md into docs/benchmarks.md")
    parser.add_argument("--check", action="store_true",
                        help="run nothing: exit 1 when docs/benchmarks.md differs from the published results")
    parser.add_argument("--profile", metavar="NAME", default="",
                        help="run benchmark NAME under py-spy (its worker processes included) and write a flame "
                             "graph to bench/results/profile-NAME.svg; its figures are not published")
    parser.add_argument("--long", choices=sorted(LONG_RUNS), default="",
                        help="run one long benchmark alone and publish it to bench/results/latest-NAME.md")
    args = parser.parse_args(argv)
    if args.long and (args.only or args.quick):
        parser.error("--long runs one benchmark at its own size: it takes neither --only nor --quick")
    if args.profile:
        return profile(args.profile, args.quick)
    if args.readme:
        return update_readme()
    if args.check:
        return check_readme()

    names = [args.long] if args.long else [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS and n not in LONG_RUNS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    harness.KEEP_TEMP = args.keep
    mode = args.long or ("quick" if args.quick else "full")

    dirty = harness.uncommitted()
    load = harness.wait_for_quiet(args.settle)
    print(f"load average at start: {load:.2f} (1 min); tree: {'uncommitted changes' if dirty else 'clean'}",
          file=sys.stderr, flush=True)
    top = header(args.quick, harness.machine(), args.long)
    print(top, flush=True)
    sections: list[str] = []
    failed: list[str] = []
    void: list[str] = []
    started = time.monotonic()
    for name in names:
        section_load = harness.wait_for_quiet(args.settle)
        print(f"… running {name} (load {section_load:.2f})", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            module, kwargs = LONG_RUNS.get(name, (name, {}))
            section = importlib.import_module(f"bench.{module}").run(args.quick, **kwargs)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others' tables
            traceback.print_exc()
            failed.append(name)
            section = harness.Section(title=name, setup=f"**failed**: {type(exc).__name__}: {exc}")
        section.seconds = time.monotonic() - t0
        section.load_at_start = section_load
        if section.void:
            void.append(name)
        text = section.render()
        print(text, flush=True)
        sections.append(text)
        _write(SCRATCH, top, sections, time.monotonic() - started, mode)
    total = time.monotonic() - started
    reasons = unpublishable(bool(args.only), failed, void, dirty)
    target = SCRATCH if reasons else RESULTS / f"latest-{mode}.md"
    _write(target, top, sections, total, mode)
    if args.out:
        _write(args.out, top, sections, total, mode)
    if reasons:
        print(f"not published ({'; '.join(reasons)}): written to {SCRATCH.relative_to(ROOT)}", file=sys.stderr)
    else:
        print(f"published to {target.relative_to(ROOT)}; `python bench/run.py --readme` puts it into "
              "docs/benchmarks.md", file=sys.stderr)
    print(f"total {total / 60:.1f} min")
    return 1 if failed or void else 0


def profile(name: str, quick: bool) -> int:
    """A flame graph of one benchmark: py-spy samples this process and every process it starts
    (the Celery workers, the sandbox, the API), 100 times a second, and renders an SVG."""
    if name not in BENCHMARKS:
        print(f"--profile: unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("--profile needs py-spy: `pip install py-spy` (in the project's venv: .venv/bin/pip)", file=sys.stderr)
        return 2
    out = RESULTS / f"profile-{name}.svg"
    command = [spy, "record", "--subprocesses", "--rate", "100", "--format", "flamegraph", "--output", str(out),
               "--", sys.executable, str(Path(__file__).resolve()), "--only", name, "--settle", "0",
               *(["--quick"] if quick else [])]
    print(" ".join(command), file=sys.stderr)
    done = subprocess.run(command, cwd=ROOT)
    if done.returncode == 0 and out.exists():
        print(f"flame graph: {out.relative_to(ROOT)} (open it in a browser; wider = more samples)", file=sys.stderr)
    return done.returncode


def unpublishable(subset: bool, failed: list[str], void: list[str], dirty: str) -> list[str]:
    """Why a run's results may not be published; none for a run anyone can take again."""
    reasons = []
    if subset:
        reasons.append("a subset (--only)")
    if failed:
        reasons.append(f"failed: {', '.join(failed)}")
    if void:
        reasons.append(f"void (load >= {harness.QUIET_LOAD} at start): {', '.join(void)}")
    if dirty:
        reasons.append("uncommitted changes in the tree")
    return reasons


REPRODUCE = {"full": ("make bench", "python bench/run.py"), "quick": ("make bench-quick", "python bench/run.py --quick"),
             "scale-100k": ("make bench-100k", "python bench/run.py --long scale-100k")}


def _write(out: Path, top: str, sections: list[str], seconds: float, mode: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    make, command = REPRODUCE[mode]
    footer = f"Total {seconds / 60:.1f} min. Reproduce with `{make}` (or `{command}`).\n"
    out.write_text(top + "\n" + "\n".join(sections) + "\n" + footer)


def results_block() -> str | None:
    """The generated part of docs/benchmarks.md: the latest published full run (if any), then
    the latest published quick run and long runs, folded; None when neither full nor quick exists."""
    parts = []
    summaries = {"quick": "Latest quick run"} | {name: f"Latest long run: {name}" for name in LONG_RUNS}
    for mode in ("full", "quick", *LONG_RUNS):
        path = RESULTS / f"latest-{mode}.md"
        if path.exists() and (parts or mode in ("full", "quick")):
            body = path.read_text().split("\n", 1)[1].strip()  # drop the "## Benchmark results" title
            parts.append(body if not parts else f"<details><summary>{summaries[mode]}</summary>\n\n{body}\n\n</details>")
    return "\n\n".join(parts) if parts else None


def render_page(text: str, block: str) -> str:
    """`text` (docs/benchmarks.md) with `block` between its markers."""
    if text.count(START) != 1 or text.count(END) != 1:
        raise ValueError(f"docs/benchmarks.md needs exactly one {START} and one {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + START + "\n" + block + "\n" + END + tail


def update_readme() -> int:
    """Put the published results between docs/benchmarks.md's markers."""
    block = results_block()
    if block is None:
        print("no bench/results/latest-{full,quick}.md yet: run make bench or make bench-quick", file=sys.stderr)
        return 2
    PAGE.write_text(render_page(PAGE.read_text(), block))
    print("docs/benchmarks.md: results updated")
    return 0


def check_readme() -> int:
    block = results_block()
    if block is None or render_page(PAGE.read_text(), block) != PAGE.read_text():
        print("docs/benchmarks.md differs from bench/results/latest-*.md: run `python bench/run.py --readme`",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
