"""What makes a worker's memory bounded and its I/O steps safe on a thread pool."""

from __future__ import annotations

import threading

from producer.client.celery_config import celery_config
from producer.settings import Settings
from workers.upstream.http_client import thread_session


def test_the_eta_task_limit_comes_from_its_setting() -> None:
    assert celery_config(Settings())["worker_eta_task_limit"] == 1000
    assert celery_config(Settings(worker_eta_task_limit=50))["worker_eta_task_limit"] == 50
    assert celery_config(Settings(worker_eta_task_limit=0))["worker_eta_task_limit"] is None


def test_each_thread_has_its_own_http_session() -> None:
    mine = thread_session()
    assert thread_session() is mine
    theirs: list[object] = []
    worker = threading.Thread(target=lambda: theirs.append(thread_session()))
    worker.start()
    worker.join(timeout=10)
    assert theirs and theirs[0] is not mine
    assert mine.trust_env is False
