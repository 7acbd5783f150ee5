"""The worker's Celery app: `celery -A workers.celery_app worker -Q submit,poll,download,callback`."""

from __future__ import annotations

from celery.signals import (
    beat_init,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from producer.core.broker import celery_config
from producer.core.quorum_queues import SongqueueCelery, declare_task_queues, uses_quorum
from producer.core.settings import get_settings
from producer.core.unknown_settings import warn_unknown
from workers import (
    diagnostics,
    fault_points,
    fleet_card,
    log_format,  # noqa: F401 - connects the JSON log signals (SONGQUEUE_LOG_JSON)
    watchdog_timer,  # noqa: F401 - every worker runs the watchdog round on a timer
)

# Retries keep their argsrepr (workers/task_base.py), so Flower shows the job all along.
app = SongqueueCelery("songqueue", task_cls="workers.task_base:SongqueueTask")
app.conf.update(celery_config(get_settings()))
if app.conf.broker_url.startswith(("redis://", "rediss://")):
    app.conf.broker_transport = "workers.redis_transport:Transport"
elif app.conf.broker_url.startswith("sentinel://"):
    app.conf.broker_transport = "workers.redis_transport:SentinelTransport"
app.conf.include = [
    "workers.tasks.submit", "workers.tasks.poll", "workers.tasks.poll_drain", "workers.tasks.download", "workers.tasks.finalize",
    "workers.tasks.watchdog", "workers.tasks.callback", "workers.tasks.playlist",
    "workers.tasks.archive",
]
# `celery beat` adds every scheduled playlist of SONGQUEUE_PLAYLISTS_DIR to beat_schedule.
app.conf.beat_scheduler = "workers.playlists.beat:PlaylistScheduler"


# Quorum queues: every task queue exists before the worker binds them all to the delayed
# exchanges (producer/core/quorum_queues.py), whichever queues this worker consumes.
if uses_quorum(app):
    worker_init.connect(lambda **_: declare_task_queues(app), weak=False)

# A mistyped SONGQUEUE_* variable is ignored by the settings: say so where operators look.
worker_ready.connect(lambda **_: warn_unknown(), weak=False)
# A crash point armed without the test switch stops the worker before it takes a message.
worker_init.connect(lambda **_: fault_points.refuse_unarmed(), weak=False)

# Diagnostics (workers/diagnostics.py), each switched by a setting: pool children freeze their
# inherited heap (SONGQUEUE_GC_FREEZE, on), tracemalloc dumps (SONGQUEUE_TRACEMALLOC_DIR, off).
worker_process_init.connect(lambda **_: diagnostics.pool_child_started(get_settings()), weak=False)
worker_ready.connect(lambda sender=None, **_: diagnostics.worker_ready(get_settings(), sender), weak=False)
worker_process_shutdown.connect(lambda **_: diagnostics.stopping(), weak=False)
worker_shutdown.connect(lambda **_: diagnostics.stopping(), weak=False)
# What this worker runs with, for `songqueue doctor` and songqueue_worker_up (workers/fleet_card.py).
worker_ready.connect(lambda sender=None, **_: fleet_card.ready(get_settings(), sender), weak=False)
worker_shutdown.connect(lambda **_: fleet_card.stopping(), weak=False)
beat_init.connect(lambda **_: warn_unknown(), weak=False)
