"""What every benchmark shares: private servers, job submission and waiting, memory
readings, and markdown tables.

Servers come from deploy/local/stack.py, so a benchmark starts Redis, the sandbox and
real Celery workers exactly as the tests and `make demo` do. Each benchmark gets its own
Redis (never the machine's) in a temporary folder and stops everything it started.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy" / "local"))
import stack  # noqa: E402

from producer import SongQueue, UdioRequest  # noqa: E402
from producer.core.models.job_record import TERMINAL_STATES, JobRecord, JobState  # noqa: E402
from producer.core.settings import Settings  # noqa: E402
from producer.core.store.job_store import JobStore  # noqa: E402
from producer.core.store.keys import job as job_key  # noqa: E402
from producer.core.store.keys import jobs_in_state  # noqa: E402

API_KEY = "bench-sandbox-key"  # a made-up key for the local sandbox
KEEP_TEMP = False  # set by run.py --keep


# --- numbers and tables ---------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else float("nan")


def quantile(values: Iterable[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    return data[min(len(data) - 1, max(0, round(q * (len(data) - 1))))]


def fmt(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:  # nan
        return "–"
    return f"{value:,.{digits}f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class Section:
    """One benchmark's result: what ran, the table, and what to read from it."""

    title: str
    setup: str
    table: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # The 1-minute load average when it started (bench/run.py waits for a quiet machine).
    load_at_start: float | None = None

    @property
    def void(self) -> bool:
        """Started on a busy machine: its figures measure the other work as much as ours."""
        return self.load_at_start is not None and self.load_at_start >= QUIET_LOAD

    def render(self) -> str:
        parts = [f"### {self.title}", ""]
        if self.void:
            parts += [f"**Void**: the load average was {self.load_at_start:.2f} (>= {QUIET_LOAD}) when it started; "
                      "its figures are not published.", ""]
        parts += [self.setup, ""]
        if self.table:
            parts += [self.table, ""]
        parts += [f"- {n}" for n in self.notes]
        load = "" if self.load_at_start is None else f"; load {self.load_at_start:.2f} at start"
        parts += ["", f"_({self.seconds:.0f} s{load})_", ""]
        return "\n".join(parts)


# --- process memory ---------------------------------------------------------------------


def _status_kib(pid: int, field_name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def child_pids(pid: int) -> list[int]:
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in children.read_text().split()]
    return sorted(set(found))


@dataclass
class Memory:
    """Peak resident memory (VmHWM) of a worker's main process and its pool children, MiB."""

    main: float
    children: list[float]

    @property
    def child_peak(self) -> float:
        return max(self.children, default=float("nan"))

    def describe(self) -> str:
        kids = ", ".join(fmt(c, 0) for c in self.children) or "–"
        return f"main {fmt(self.main, 0)} / pool {kids}"


def peak_memory(proc: subprocess.Popen) -> Memory:
    """Read before the worker is stopped: VmHWM is the high-water mark of resident memory."""
    main = (_status_kib(proc.pid, "VmHWM") or 0) / 1024
    children = [(_status_kib(p, "VmHWM") or 0) / 1024 for p in child_pids(proc.pid)]
    return Memory(main, children)


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by a worker's main process and its live pool
    children. Read before the worker is stopped."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in [pid, *child_pids(pid)]:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / tick


# --- worker logs ------------------------------------------------------------------------

_TASK_RUN = re.compile(r"Task (\S+)\[[0-9a-f-]+\] (succeeded in ([0-9.e-]+)s|retry:|raised)")


def task_runs(log: Path) -> list[tuple[str, str, float | None]]:
    """Every task run a worker logged at INFO: (task name, outcome, runtime in seconds)."""
    runs = []
    for match in _TASK_RUN.finditer(log.read_text(errors="replace")):
        outcome = match.group(2).split()[0].rstrip(":")
        runtime = float(match.group(3)) if match.group(3) else None
        runs.append((match.group(1), outcome, runtime))
    return runs


# --- servers ------------------------------------------------------------------------------


@dataclass
class Worker:
    proc: subprocess.Popen
    log: Path
    name: str

    def memory(self) -> Memory:
        return peak_memory(self.proc)

    def runs(self) -> list[tuple[str, str, float | None]]:
        return task_runs(self.log)


@dataclass
class Servers:
    """One benchmark's private Redis and sandbox, and the workers it starts on them."""

    tmp: Path
    redis_base: str
    redis_proc: subprocess.Popen
    sandbox_url: str
    sandbox_proc: subprocess.Popen
    workers: list[Worker] = field(default_factory=list)
    _dbs: Iterator[int] = field(default_factory=lambda: iter(range(1, 16)))

    def env(self, **settings: object) -> dict[str, str]:
        """Worker environment on a fresh Redis database (broker and job store), so runs
        never share queues. Keyword arguments are SONGQUEUE_ settings without the prefix."""
        db = next(self._dbs)
        url = f"{self.redis_base}/{db}"
        redis.Redis.from_url(url).flushdb()
        base = {
            "BROKER_URL": url,
            "REDIS_URL": url,
            "KEY_PREFIX": f"b{uuid.uuid4().hex[:6]}",
            "UDIO_BASE_URL": self.sandbox_url,
            "UDIO_API_KEY": API_KEY,
            "STORAGE_URL": (self.tmp / f"objects-{db}").as_uri(),
            "MAX_DOWNLOAD_BYTES": str(1 << 30),
            "ALLOW_PRIVATE_NETWORKS": "true",  # the sandbox serves its files from 127.0.0.1
        }
        base.update({k.upper(): str(v) for k, v in settings.items()})
        return stack.worker_env({f"SONGQUEUE_{k}": v for k, v in base.items()})

    def start_worker(self, env: dict[str, str], name: str, *, queues: str = "submit,poll,download",
                     concurrency: int = 2, app: str = "workers.celery_app", pool: str = "prefork") -> Worker:
        log = self.tmp / f"{name}.log"
        proc = stack.start_worker(env, log, name=name, queues=queues, concurrency=concurrency, app=app,
                                  extra=("--pool", pool))
        worker = Worker(proc, log, name)
        self.workers.append(worker)
        return worker

    def stop_worker(self, worker: Worker) -> None:
        stack.stop(worker.proc)

    def sandbox_stats(self) -> dict[str, Any]:
        return requests.get(f"{self.sandbox_url}/_sandbox/stats", timeout=120).json()

    def reset_sandbox(self) -> None:
        requests.post(f"{self.sandbox_url}/_sandbox/reset", timeout=30).raise_for_status()

    def redis_info(self) -> dict[str, Any]:
        return redis.Redis.from_url(f"{self.redis_base}/0").info("memory")


@contextlib.contextmanager
def servers(name: str, *sandbox_args: str) -> Iterator[Servers]:
    """A private Redis and sandbox for one benchmark; everything stopped on the way out."""
    tmp = Path(tempfile.mkdtemp(prefix=f"songqueue-bench-{name}-"))
    started: list[subprocess.Popen] = []
    ok = False
    built: Servers | None = None
    try:
        redis_proc, redis_url = stack.start_redis(tmp / "redis")
        started.append(redis_proc)
        sandbox_proc, sandbox_url = stack.start_sandbox(
            "--api-key", API_KEY, *sandbox_args, log=tmp / "sandbox.log")
        started.append(sandbox_proc)
        built = Servers(tmp, redis_url.rsplit("/", 1)[0], redis_proc, sandbox_url, sandbox_proc)
        yield built
        ok = True
    finally:
        for worker in built.workers if built else []:
            stack.stop(worker.proc)
        for proc in reversed(started):
            stack.stop(proc)
        if ok and not KEEP_TEMP:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"  (logs kept in {tmp})", file=sys.stderr)


# --- jobs ---------------------------------------------------------------------------------


def settings_from(env: dict[str, str]) -> Settings:
    return Settings(**{k.removeprefix("SONGQUEUE_").lower(): v for k, v in env.items()
                       if k.startswith("SONGQUEUE_")})


def producer(env: dict[str, str]) -> SongQueue:
    return SongQueue(settings_from(env))


def prompt(label: str, **directives: object) -> str:
    """A unique prompt (the sandbox counts submits per prompt) carrying sandbox directives."""
    extra = " ".join(f"sandbox:{k}={v}" for k, v in directives.items())
    return f"bench {label} {uuid.uuid4().hex[:10]} {extra}".strip()


def submit_jobs(queue: SongQueue, prompts: Iterable[str]) -> list[str]:
    return [queue.submit(UdioRequest(prompt=p, lyrics_type="instrumental")).id for p in prompts]


def count_states(store: JobStore, states: Iterable[JobState]) -> int:
    pipe = store.redis.pipeline(transaction=False)
    for state in states:
        pipe.zcard(jobs_in_state(store.prefix, state.value))
    return sum(pipe.execute())


def wait_for_jobs(
    store: JobStore,
    total: int,
    *,
    timeout: float,
    stall: float = 120,
    on_sample: Callable[[], None] | None = None,
    interval: float = 0.25,
) -> int:
    """Wait until `total` jobs of this key prefix are terminal; return how many are.

    Gives up after `timeout` seconds, or after `stall` seconds without any job ending
    (what is left then counts as lost). `on_sample` runs at every look, for gauges.
    """
    deadline = time.monotonic() + timeout
    last_change, last = time.monotonic(), -1
    while True:
        if on_sample is not None:
            on_sample()
        done = count_states(store, TERMINAL_STATES)
        now = time.monotonic()
        if done != last:
            last, last_change = done, now
        if done >= total or now > deadline or now - last_change > stall:
            return done
        time.sleep(interval)


def load_records(store: JobStore, ids: Sequence[str]) -> list[JobRecord]:
    records: list[JobRecord] = []
    for start in range(0, len(ids), 500):
        raws = store.redis.mget([job_key(store.prefix, i) for i in ids[start:start + 500]])
        records += [JobRecord.model_validate_json(r) for r in raws if r]
    return records


def entered(record: JobRecord, state: JobState) -> float | None:
    return next((t.at for t in record.transitions if t.state == state), None)


def makespan(records: Sequence[JobRecord]) -> float:
    """First job created to the last one SUCCEEDED (nan if none succeeded)."""
    ends = [e for e in (entered(r, JobState.SUCCEEDED) for r in records) if e is not None]
    if not ends:
        return float("nan")
    return max(ends) - min(r.created_at for r in records)


def latencies(records: Sequence[JobRecord]) -> list[float]:
    out = []
    for r in records:
        end = entered(r, JobState.SUCCEEDED)
        if end is not None:
            out.append(end - r.created_at)
    return out


def state_counts(records: Sequence[JobRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.state.value] = counts.get(r.state.value, 0) + 1
    return counts


def machine() -> dict[str, str]:
    import os
    import platform

    import celery

    mem_kib = _status_kib_meminfo()
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = uncommitted()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu or platform.processor() or "?",
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB" if mem_kib else "?",
        "python": platform.python_version(),
        "celery": celery.__version__,
        "redis-server": _redis_version(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
    }


def _status_kib_meminfo() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return None


def _redis_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([stack.redis_binary(), "--version"], capture_output=True, text=True, timeout=10).stdout
        match = re.search(r"v=(\S+)", out)
        if match:
            return match.group(1)
    return "?"


def uncommitted() -> str:
    """What `git status --porcelain` lists (untracked files included); empty on a clean tree."""
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


# A figure is taken on a quiet machine: the 1-minute load average below this at the start of
# a benchmark (2 cores here; anything else running turns a measure of ours into one of it).
QUIET_LOAD = 1.0


def load1() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(timeout: float, limit: float = QUIET_LOAD, poll: float = 5.0) -> float:
    """Wait up to `timeout` seconds for the 1-minute load average to fall below `limit`;
    returns the last reading (still >= limit when it did not fall in time)."""
    deadline = time.monotonic() + timeout
    load = load1()
    while load >= limit and time.monotonic() < deadline:
        time.sleep(poll)  # pacing between readings of /proc/loadavg, not synchronisation
        load = load1()
    return load
