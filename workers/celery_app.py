"""The worker's Celery app: `celery -A workers.celery_app worker -Q submit,poll,download,callback`."""

from __future__ import annotations

from celery import Celery
from celery.signals import beat_init, worker_ready

from producer.client.celery_config import celery_config
from producer.settings import get_settings
from producer.unknown_settings import warn_unknown
from workers import (
    log_format,  # noqa: F401 - connects the JSON log signals (SONGQUEUE_LOG_JSON)
    watchdog_timer,  # noqa: F401 - every worker runs the watchdog round on a timer
)

# Retries keep their argsrepr (workers/task_base.py), so Flower shows the job all along.
app = Celery("songqueue", task_cls="workers.task_base:SongqueueTask")
app.conf.update(celery_config(get_settings()))
if app.conf.broker_url.startswith(("redis://", "rediss://")):
    app.conf.broker_transport = "workers.redis_transport:Transport"
app.conf.include = [
    "workers.tasks.submit", "workers.tasks.poll", "workers.tasks.poll_drain", "workers.tasks.download", "workers.tasks.finalize",
    "workers.tasks.watchdog", "workers.tasks.callback", "workers.tasks.playlist",
    "workers.tasks.archive",
]
# `celery beat` adds every scheduled playlist of SONGQUEUE_PLAYLISTS_DIR to beat_schedule.
app.conf.beat_scheduler = "workers.playlists.beat:PlaylistScheduler"


# A mistyped SONGQUEUE_* variable is ignored by the settings: say so where operators look.
worker_ready.connect(lambda **_: warn_unknown(), weak=False)
beat_init.connect(lambda **_: warn_unknown(), weak=False)
