"""The worker's Celery app: `celery -A workers.celery_app worker -Q submit,poll,download`."""

from __future__ import annotations

from celery import Celery

from producer.celery_config import celery_config
from producer.settings import get_settings

app = Celery("songqueue")
app.conf.update(celery_config(get_settings()))
if app.conf.broker_url.startswith(("redis://", "rediss://")):
    app.conf.broker_transport = "workers.redis_transport:Transport"
app.conf.include = [
    "workers.tasks.submit", "workers.tasks.poll", "workers.tasks.download", "workers.tasks.finalize",
    "workers.tasks.watchdog",
]
