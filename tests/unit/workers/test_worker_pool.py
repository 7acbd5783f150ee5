"""What makes a worker's memory bounded and its I/O steps safe on a thread pool."""

from __future__ import annotations

from producer.core.broker import celery_config
from producer.core.settings import Settings


def test_the_eta_task_limit_comes_from_its_setting() -> None:
    assert celery_config(Settings())["worker_eta_task_limit"] == 1000
    assert celery_config(Settings(worker_eta_task_limit=50))["worker_eta_task_limit"] == 50
    assert celery_config(Settings(worker_eta_task_limit=0))["worker_eta_task_limit"] is None


def test_the_child_memory_backstop_comes_from_its_setting_in_kib() -> None:
    assert celery_config(Settings())["worker_max_memory_per_child"] == 512 * 1024
    assert celery_config(Settings(worker_max_memory_per_child=300))["worker_max_memory_per_child"] == 300 * 1024
    assert celery_config(Settings(worker_max_memory_per_child=0))["worker_max_memory_per_child"] is None
