"""Baseline for the pipeline-overhead benchmark: a Celery task that does nothing.

Run by a real worker (`celery -A bench.noop_worker worker -Q noop`) with the same
configuration as songqueue's workers (same broker, acks_late, prefetch, events, log
level), so tasks per second here is what Celery and the broker cost on this box before
any of our own work.
"""

from __future__ import annotations

from celery import Celery

from producer.core.broker import celery_config
from producer.core.settings import get_settings

NOOP = "bench.noop"
QUEUE = "noop"

app = Celery("songqueue-bench-noop")
app.conf.update(celery_config(get_settings()))
app.conf.task_routes = {NOOP: {"queue": QUEUE}}


@app.task(name=NOOP)
def noop(n: int) -> None:
    return None
