"""Pool children freeze the heap they inherit (`gc.freeze()`), so retry garbage is collected soon.

Every countdown retry (each poll is one) makes Celery build an exception record in reference
cycles that only the cyclic collector frees, a few hundred KiB each (bench/retry_garbage.py).
Python runs a full collection only once the survivors in the oldest generation grow by 25 %
of what is there, and a pool child starts with the worker's whole heap there (about 75,000
objects): between full collections garbage from hundreds of retries piles up, the allocator
grows to hold it and keeps the memory. Frozen, the inherited objects leave the collector's
accounts: full collections follow the child's own objects, about ten times as often, and the
child stays near its starting size. The collector also stops writing to the inherited
objects, which keeps their pages shared with the main process (copy-on-write).
"""

from __future__ import annotations

import gc
from typing import Any

from celery import signals


def freeze() -> None:
    gc.collect()  # what is already garbage goes now, not into the permanent generation
    gc.freeze()


@signals.worker_process_init.connect
def _in_pool_child(**_: Any) -> None:
    freeze()
