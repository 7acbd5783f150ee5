"""Run the benchmarks, print their tables, and write them to bench/results/latest.md.

    python bench/run.py [--quick] [--only NAME[,NAME...]] [--out PATH] [--keep]
    python bench/run.py --readme     # copy the latest results into docs/benchmarks.md, run nothing

`make bench` runs the full set, `make bench-quick` the same with small parameters. Every
benchmark starts its own Redis, sandbox and workers (deploy/local/stack.py) and measures
its baseline in the same run; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402

# In the order they run: the cheap ones first, the long scale run last.
BENCHMARKS = ("pipeline_overhead", "slot_efficiency", "poll_efficiency", "suno_polling", "minimax_hex", "notify_hook", "http_api",
              "download", "download_wire", "io_pool", "eta_memory", "retention", "retry_garbage", "scale")
RESULTS = ROOT / "bench" / "results"


def header(quick: bool, info: dict[str, str]) -> str:
    mode = "`make bench-quick` (small parameters)" if quick else "`make bench` (full parameters)"
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
                        help="markdown output (default bench/results/latest.md; with --only, bench/results/only.md)")
    parser.add_argument("--keep", action="store_true", help="keep temporary folders (logs, Redis data)")
    parser.add_argument("--readme", action="store_true",
                        help="run nothing: copy bench/results/latest-{full,quick}.md into docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.readme:
        return update_readme()

    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    out = args.out or RESULTS / ("latest.md" if not args.only else "only.md")
    harness.KEEP_TEMP = args.keep

    top = header(args.quick, harness.machine())
    print(top, flush=True)
    sections: list[str] = []
    failed = []
    started = time.monotonic()
    for name in names:
        print(f"… running {name}", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            section = importlib.import_module(f"bench.{name}").run(args.quick)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others' tables
            traceback.print_exc()
            failed.append(name)
            section = harness.Section(title=name, setup=f"**failed**: {type(exc).__name__}: {exc}")
        section.seconds = time.monotonic() - t0
        text = section.render()
        print(text, flush=True)
        sections.append(text)
        _write(out, top, sections, time.monotonic() - started, args.quick)
    total = time.monotonic() - started
    _write(out, top, sections, total, args.quick)
    if not args.only and not failed:
        _write(RESULTS / f"latest-{'quick' if args.quick else 'full'}.md", top, sections, total, args.quick)
    print(f"total {total / 60:.1f} min; written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 1 if failed else 0


def _write(out: Path, top: str, sections: list[str], seconds: float, quick: bool) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "make bench-quick" if quick else "make bench"
    footer = f"Total {seconds / 60:.1f} min. Reproduce with `{command}` (or `python bench/run.py{' --quick' if quick else ''}`).\n"
    out.write_text(top + "\n" + "\n".join(sections) + "\n" + footer)


def update_readme() -> int:
    """Put the latest full run (if any) and the latest quick run between docs/benchmarks.md's markers."""
    readme = ROOT / "docs" / "benchmarks.md"
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    text = readme.read_text()
    if text.count(start) != 1 or text.count(end) != 1:
        print(f"docs/benchmarks.md needs exactly one {start} and one {end}", file=sys.stderr)
        return 2
    parts = []
    for mode in ("full", "quick"):
        path = RESULTS / f"latest-{mode}.md"
        if path.exists():
            body = path.read_text().split("\n", 1)[1].strip()  # drop the "## Benchmark results" title
            parts.append(body if not parts else f"<details><summary>Latest quick run</summary>\n\n{body}\n\n</details>")
    if not parts:
        print("no bench/results/latest-{full,quick}.md yet: run make bench or make bench-quick", file=sys.stderr)
        return 2
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n" + "\n\n".join(parts) + "\n" + end + tail)
    print("docs/benchmarks.md: results updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
