"""Worker diagnostics, each switched by a setting and started by the worker's signals
(workers/celery_app.py connects `pool_child_started`, `worker_ready` and `stopping`).

**gc.freeze** (SONGQUEUE_GC_FREEZE, on by default): each pool child freezes the heap it
inherits (`gc.collect(); gc.freeze()`), so retry garbage is collected soon. Every countdown
retry (each poll is one) makes Celery build an exception record in reference cycles that
only the cyclic collector frees, a few hundred KiB each (bench/retry_garbage.py). Python runs
a full collection only once the survivors in the oldest generation grow by 25 % of what is
there, and a pool child starts with the worker's whole heap there (about 75,000 objects):
between full collections garbage from hundreds of retries piles up, the allocator grows to
hold it and keeps the memory. Frozen, the inherited objects leave the collector's accounts:
full collections follow the child's own objects, about ten times as often, and the child
stays near its starting size (bench/gc_freeze.py measures it against the baseline).

**tracemalloc** (SONGQUEUE_TRACEMALLOC_DIR, off by default): where a worker process's Python
memory goes over a run. Each pool child (and a worker on a thread or solo pool, which has
no children) starts `tracemalloc` and, on a timer thread, snapshots its allocations every
`INTERVAL` seconds and rewrites `{dir}/heap-{pid}.txt`: the traced total, the top allocation
sites (filename:lineno) by size, and the sites that grew most since the first snapshot. A
site that keeps growing snapshot after snapshot is a leak; one that grows and then stays is
a cache or an import. tracemalloc sees only Python's own allocations: the file also records
the process's resident memory, so the part outside Python (C libraries, the allocator's
arenas) shows as the difference. Tracing slows every allocation (about 2x here) and its own
records take memory, so never leave it on in production.
"""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from producer.core.settings import Settings

INTERVAL = 20.0
TOP = 25
WARMUP = 10.0  # the first snapshot, once the child has imported and run its first tasks


def _status_mib(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mib() -> float:
    return _status_mib("VmRSS")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _malloc_line() -> str:
    """glibc's own account (mallinfo2, every arena): what Python's large objects and C libraries
    hold, and what malloc keeps free without returning it to the system."""
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return "malloc: mallinfo2 not available"
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return (f"malloc: in use {info.uordblks / 2**20:.1f} MiB, free but kept {info.fordblks / 2**20:.1f} MiB, "
            f"mmapped {info.hblkhd / 2**20:.1f} MiB")


def _site(stat: Any) -> str:
    frame = stat.traceback[0]
    return f"{frame.filename}:{frame.lineno}"


def report(first: tracemalloc.Snapshot, now: tracemalloc.Snapshot, started: float, rss_first: float) -> str:
    """The text of one dump: totals, the top sites by size, and the top growth since `first`."""
    traced = sum(s.size for s in now.statistics("filename")) / 2**20
    current, peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
    lines = [f"pid {os.getpid()}  {time.monotonic() - started:.0f} s  traced {traced:.1f} MiB  "
             f"rss {_rss_mib():.1f} MiB (at the first snapshot {rss_first:.1f} MiB)",
             f"rss anon {_status_mib('RssAnon'):.1f} MiB, file {_status_mib('RssFile'):.1f} MiB; traced now "
             f"{current / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB; tracemalloc's own "
             f"{tracemalloc.get_tracemalloc_memory() / 2**20:.1f} MiB",
             _malloc_line(),
             "gc collections by generation: " + ", ".join(str(g["collections"]) for g in gc.get_stats()),
             "", "top sites by size:"]
    lines += [f"  {s.size / 1024:10.1f} KiB  {s.count:8d} blocks  {_site(s)}" for s in now.statistics("lineno")[:TOP]]
    lines += ["", "grown most since the first snapshot:"]
    lines += [f"  {d.size_diff / 1024:+10.1f} KiB  {d.count_diff:+8d} blocks  (now {d.size / 1024:.1f} KiB)  {_site(d)}"
              for d in now.compare_to(first, "lineno")[:TOP]]
    return "\n".join(lines) + "\n"


@dataclass
class _Trace:
    folder: Path
    started: float = field(default_factory=time.monotonic)
    first: tracemalloc.Snapshot | None = None
    rss_first: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def dump(self) -> None:
        """Rewrite this process's file from a snapshot taken now (nothing before the first)."""
        with self.lock:
            if self.first is None or not tracemalloc.is_tracing():
                return
            out = self.folder / f"heap-{os.getpid()}.txt"
            out.with_suffix(".tmp").write_text(report(self.first, tracemalloc.take_snapshot(), self.started,
                                                      self.rss_first))
            out.with_suffix(".tmp").replace(out)  # whole or not at all, for whoever reads it mid-run


def _trace(trace: _Trace, stop: threading.Event) -> None:
    if stop.wait(WARMUP):
        return
    trace.first, trace.rss_first = tracemalloc.take_snapshot(), _rss_mib()
    while not stop.wait(INTERVAL):
        trace.dump()


_stop = threading.Event()
_current: _Trace | None = None


def freeze_heap() -> None:
    """Move every object this process has (what a pool child inherited) out of the collector's accounts."""
    gc.collect()  # what is already garbage goes now, not into the permanent generation
    gc.freeze()


def start_tracing(folder: str) -> None:
    """Trace this process's allocations and dump them into `folder` every INTERVAL seconds."""
    global _current
    Path(folder).mkdir(parents=True, exist_ok=True)
    tracemalloc.start(1)  # one frame: sites by filename:lineno, the cheapest tracing
    _stop.clear()
    _current = _Trace(Path(folder))
    threading.Thread(target=_trace, args=(_current, _stop), name="songqueue-heap-profile", daemon=True).start()


def pool_child_started(settings: Settings) -> None:
    """Celery's worker_process_init: a prefork child, before its first task."""
    if settings.gc_freeze:
        freeze_heap()
    if settings.tracemalloc_dir:
        start_tracing(settings.tracemalloc_dir)


def worker_ready(settings: Settings, sender: Any = None) -> None:
    """Celery's worker_ready: a thread or solo pool runs its tasks in this process, so it is
    traced here (prefork children trace themselves; the main process is never frozen)."""
    pool = getattr(getattr(sender, "controller", None), "pool_cls", None)
    if settings.tracemalloc_dir and pool is not None and "prefork" not in getattr(pool, "__module__", ""):
        start_tracing(settings.tracemalloc_dir)


def stopping() -> None:
    """Celery's worker_process_shutdown and worker_shutdown: a last dump as the process stops
    (the end of the run is what the growth is measured to)."""
    _stop.set()
    if _current is not None:
        _current.dump()
