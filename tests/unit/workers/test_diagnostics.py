"""workers/diagnostics.py: nothing happens unless a setting turns it on; on, the pool child
freezes its heap (SONGQUEUE_GC_FREEZE) or traces its allocations (SONGQUEUE_TRACEMALLOC_DIR),
and the worker's own signals call it. The tracemalloc report names the site that grew."""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path

import pytest
from celery import signals

from producer.core.settings import Settings
from workers import diagnostics
from workers.diagnostics import report


def test_the_report_names_the_growing_site_with_its_size() -> None:
    tracemalloc.start(1)
    try:
        first = tracemalloc.take_snapshot()
        grown = [bytes(1024) for _ in range(2000)]  # about 2 MiB from this very line
        line = test_the_report_names_the_growing_site_with_its_size.__code__.co_firstlineno + 4
        text = report(first, tracemalloc.take_snapshot(), time.monotonic(), 0.0)
    finally:
        tracemalloc.stop()
    growth = text.split("grown most since the first snapshot:")[1].splitlines()[1]
    assert growth.rstrip().endswith(f"test_diagnostics.py:{line}"), text
    assert float(growth.split()[0]) > 2000  # KiB: the 2,000 KiB allocated there, and a bit of overhead
    assert len(grown) == 2000


def test_off_the_pool_child_hook_does_nothing() -> None:
    assert gc.get_freeze_count() == 0
    diagnostics.pool_child_started(Settings(gc_freeze=False, tracemalloc_dir=""))
    assert gc.get_freeze_count() == 0
    assert not tracemalloc.is_tracing()


def test_gc_freeze_on_moves_the_heap_out_of_the_collectors_accounts() -> None:
    assert Settings().gc_freeze, "on by default"
    assert gc.get_freeze_count() == 0
    try:
        diagnostics.pool_child_started(Settings(gc_freeze=True, tracemalloc_dir=""))
        assert gc.get_freeze_count() > 1000
        assert len(gc.get_objects(generation=2)) < gc.get_freeze_count()
        assert not tracemalloc.is_tracing()
    finally:
        gc.unfreeze()


def test_tracemalloc_on_traces_the_child_until_it_stops(tmp_path: Path) -> None:
    assert not Settings().tracemalloc_dir, "off by default"
    folder = tmp_path / "heap"
    try:
        diagnostics.pool_child_started(Settings(gc_freeze=False, tracemalloc_dir=str(folder)))
        assert tracemalloc.is_tracing()
        assert folder.is_dir()
        assert gc.get_freeze_count() == 0
    finally:
        diagnostics.stopping()
        tracemalloc.stop()


def test_the_workers_signals_call_the_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    import workers.celery_app  # noqa: F401 - connects the signals

    calls: list[str] = []
    monkeypatch.setattr(diagnostics, "pool_child_started", lambda settings: calls.append("child"))
    monkeypatch.setattr(diagnostics, "worker_ready", lambda settings, sender=None: calls.append("ready"))
    monkeypatch.setattr(diagnostics, "stopping", lambda: calls.append("stop"))
    signals.worker_process_init.send(sender=None)
    signals.worker_process_shutdown.send(sender=None)
    assert calls == ["child", "stop"]
