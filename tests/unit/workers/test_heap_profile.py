"""SONGQUEUE_TRACEMALLOC_DIR's report: the site that grew is named by file and line."""

from __future__ import annotations

import time
import tracemalloc

from workers.heap_profile import report


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
    assert growth.rstrip().endswith(f"test_heap_profile.py:{line}"), text
    assert float(growth.split()[0]) > 2000  # KiB: the 2,000 KiB allocated there, and a bit of overhead
    assert len(grown) == 2000
