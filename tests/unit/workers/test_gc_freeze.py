"""A pool child freezes what it inherits, and a worker's children do it at start."""

from __future__ import annotations

import gc
import weakref

from celery import signals

from workers import gc_freeze


def test_freeze_moves_the_heap_out_of_the_collectors_accounts() -> None:
    assert gc.get_freeze_count() == 0
    try:
        gc_freeze.freeze()
        assert gc.get_freeze_count() > 1000
        assert len(gc.get_objects(generation=2)) < gc.get_freeze_count()
    finally:
        gc.unfreeze()


def test_it_runs_in_every_pool_child() -> None:
    receivers = [r() if isinstance(r, weakref.ReferenceType) else r for _, r in signals.worker_process_init.receivers]
    assert gc_freeze._in_pool_child in receivers  # noqa: SLF001 - the connection is the point
