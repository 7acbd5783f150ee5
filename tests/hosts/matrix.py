"""`make hosts`: every fault of tests/hosts/nemesis.py x every setting of its layout, on hosts of their own.

Each cell is a fresh cluster (tests/hosts/cluster.py, the Sentinel trio; sharded.py, a Redis
Cluster; rabbit_cluster.py, three RabbitMQ nodes): N jobs submitted over the HTTP API
(on a host of its own, with a key of its own), the fault struck
once half of them have left QUEUED, held, healed, then every job watched until it ends (or
the bound), and the checker (tests/hosts/checker.py) says what became of each. Prints the
table and, with --write-docs, puts it between the markers in docs/faults.md.

    python tests/hosts/matrix.py [--jobs N] [--hold S] [--faults a,b] [--settings safe,default,...] [--write-docs]

A fault this machine cannot inject (its `needs`: no RabbitMQ, a qdisc the kernel lacks) is a
row that says why; under CI=true such a row fails the run, except a missing qdisc (a kernel
module, which no package of the image brings).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "deploy" / "local")]  # run as a script by `make hosts`
import redis  # noqa: E402
import requests  # noqa: E402
import stack  # noqa: E402

from producer.core.models.job_record import JobRecord, JobState  # noqa: E402
from tests.hosts import checker  # noqa: E402
from tests.hosts.cluster import DEFAULT, SAFE, Cluster, Setting, upstream_calls  # noqa: E402
from tests.hosts.nemesis import FAULTS, Fault  # noqa: E402
from tests.hosts.netns import missing_capability  # noqa: E402
from tests.hosts.rabbit_cluster import RABBIT_CLASSIC, RABBIT_SAFE, RabbitCluster  # noqa: E402
from tests.hosts.sharded import CLUSTER_DEFAULT, CLUSTER_SAFE, ShardedCluster  # noqa: E402
from tests.support.prerequisites import in_ci  # noqa: E402

SETTINGS = {"safe": SAFE, "default": DEFAULT, "cluster-safe": CLUSTER_SAFE, "cluster-default": CLUSTER_DEFAULT,
            "rabbit": RABBIT_SAFE, "rabbit-classic": RABBIT_CLASSIC}
KINDS: dict[str, type[Cluster]] = {"sentinel": Cluster, "cluster": ShardedCluster,  # Setting.store -> its layout
                                   "rabbit": RabbitCluster}
BEGIN, END = "<!-- hosts-table:begin -->", "<!-- hosts-table:end -->"
GEN_TIME = 6  # seconds each job spends generating upstream: the fault catches jobs mid-flight


@dataclass
class Cell:
    fault: str
    setting: str
    verdict: checker.Verdict | None = None
    calls_per_job: float = 0.0
    landed: str = ""
    healed: str = ""
    skipped: str = ""  # why the cell did not run
    missing: bool = False  # it did not run because the machine lacks what the fault needs
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def run_cell(tmp: Path, fault: Fault, setting: Setting, jobs: int, hold_s: float, bound: float = 240) -> Cell:
    cell = Cell(fault.name, setting.name)
    why = fault.needs()
    if why:
        cell.skipped, cell.missing = why, True
        return cell
    started = time.monotonic()
    cluster = KINDS[setting.store](tmp, setting)
    try:
        cluster.start()
        queue = cluster.queue()
        stats_url = f"{cluster.sandbox_url}/_sandbox/stats"
        calls_before = upstream_calls(requests.get(stats_url, timeout=10).json())
        tag = uuid.uuid4().hex[:8]
        texts = {}
        with requests.Session() as api:  # every job enters through the API's own host, as a service's would
            api.headers["Authorization"] = f"Bearer {cluster.api_key()}"
            for i in range(jobs):
                text = f"hosts {tag} {i} sandbox:gen_time={GEN_TIME}"
                made = api.post(f"{cluster.api_url}/v1/jobs", json={"provider": "udio", "request": {"prompt": text}},
                                timeout=30)
                made.raise_for_status()
                texts[made.json()["id"]] = text
        ids = list(texts)

        def states() -> dict[str, JobState | None]:
            seen: dict[str, JobState | None] = {}
            for job_id in ids:
                try:
                    record = queue.store.get(job_id)
                except redis.RedisError:
                    record = None
                seen[job_id] = record.state if record else None
            return seen

        stack.wait_until(lambda: sum(s not in (None, JobState.QUEUED) for s in states().values()) >= jobs / 2,
                         120, "half the jobs under way")
        caught = {i for i, s in states().items() if s is not None and not s.terminal}
        cell.landed = fault.strike(cluster)
        ended_at: dict[str, float] = {}  # when the driver first saw each job ended
        undone: set[str] = set()  # jobs seen ended, later not: an acknowledged end the store lost

        def watch(until: float, stop_when_all_ended: bool) -> None:
            while time.monotonic() < until:
                for job_id in ids:
                    try:
                        record = queue.store.get(job_id)
                    except redis.RedisError:
                        break
                    if record is not None and record.state.terminal:
                        ended_at.setdefault(job_id, time.monotonic())
                    elif job_id in ended_at:
                        undone.add(job_id)
                        del ended_at[job_id]
                else:
                    if stop_when_all_ended and len(ended_at) == jobs:
                        return
                time.sleep(0.3)

        # The fault's length; jobs that end during it are not recovered ones.
        watch(time.monotonic() + hold_s, stop_when_all_ended=False)
        cell.healed = fault.heal(cluster)
        healed_at = time.monotonic()
        watch(healed_at + bound, stop_when_all_ended=True)
        records: dict[str, JobRecord | None] = {i: queue.store.get(i) for i in ids}
        stats = requests.get(stats_url, timeout=10).json()
        cell.verdict = checker.check(queue.store.redis, cluster.prefix, cluster.settings(), texts, records, stats,
                                     caught, ended_at, healed_at)
        cell.verdict.undone = len(undone)
        cell.calls_per_job = (upstream_calls(stats) - calls_before) / jobs
    finally:
        cluster.stop()
        cell.seconds = time.monotonic() - started
        left = cluster.net.leftovers()
        if left:
            cell.notes.append(f"left behind: {left}")
    return cell


HEADER = ("| fault | setting | jobs | ok | failed | lost | paid twice | forgotten | stuck | recovered "
          "| ends undone | recovery after heal (median / max) | upstream calls per job | invariants broken |")


def table(cells: list[Cell]) -> str:
    lines = [HEADER, "|" + "---|" * 14]
    for c in cells:
        v = c.verdict
        if v is None:
            lines.append(f"| {c.fault} | {c.setting} | not run: {c.skipped or 'failed'} |" + " |" * 11)
            continue
        lines.append(f"| {c.fault} | {c.setting} | {v.jobs} | {v.fraction(v.ok)} | {v.fraction(v.failed)} "
                     f"| {v.fraction(v.lost)} | {v.fraction(v.paid_twice)} | {v.fraction(v.forgotten)} "
                     f"| {v.fraction(v.stuck)} | {v.recovered} of {v.caught} caught | {v.fraction(v.undone)} | {v.recovery()} "
                     f"| {c.calls_per_job:.1f} | {len(v.broken)} |")
    return "\n".join(lines)


def write_docs(text: str, path: Path = ROOT / "docs" / "faults.md") -> None:
    doc = path.read_text()
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("HOSTS_JOBS", 200)))
    parser.add_argument("--hold", type=float, default=10, help="seconds each fault is held")
    parser.add_argument("--faults", default="", help="comma-separated parts of fault names (default: all)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of {', '.join(SETTINGS)}")
    parser.add_argument("--write-docs", action="store_true", help="write the table into docs/faults.md")
    args = parser.parse_args()
    why = missing_capability()
    if why:
        print(f"make hosts: {why}", file=sys.stderr)
        return 1
    wanted = [w.strip() for w in args.faults.split(",") if w.strip()]
    faults = [f for name, f in FAULTS.items() if not wanted or any(w in name for w in wanted)]
    load = os.getloadavg()[0]
    cells = []
    with tempfile.TemporaryDirectory(prefix="songqueue-hosts-") as tmp:
        crossed = [(f, SETTINGS[s]) for f in faults for s in args.settings.split(",") if SETTINGS[s].store in f.stores]
        for i, (fault, setting) in enumerate(crossed):
            try:
                cell = run_cell(Path(tmp) / f"c{i}", fault, setting, args.jobs, args.hold)
            except Exception as exc:  # noqa: BLE001 - a cell that could not run is a row that says why
                cell = Cell(fault.name, setting.name, skipped=f"{type(exc).__name__}: {exc}")
            cells.append(cell)
            v = cell.verdict
            print(f"{fault.name} / {setting.name}: {cell.seconds:.0f} s; landed: {cell.landed}; {cell.healed}; "
                  f"{'' if v is None else f'errors {v.errors}; invariants broken {len(v.broken)} {v.broken[:3]}'}"
                  f"{cell.skipped} {cell.notes}", file=sys.stderr)
    text = (f"{table(cells)}\n\n{args.jobs} jobs per cell, each fault held {args.hold:g} s; load average "
            f"{load:.2f} at the start on {os.cpu_count()} cores (`python tests/hosts/matrix.py --jobs {args.jobs}`).")
    print(text)
    if args.write_docs:
        write_docs(text)
    bad = [c for c in cells if c.verdict is None
           and not (c.missing and (not in_ci() or c.skipped.startswith("the kernel")))]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
