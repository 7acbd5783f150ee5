"""Which workers consume which queue, asked over the broker (`celery inspect active_queues`).

Through the producer's sending app, by name: no worker code needed here.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from producer.task_names import ALL_QUEUES


def consumers(app: Celery, timeout: float = 1.0) -> tuple[int, dict[str, list[str]]]:
    """(workers that answered, {queue: the names of the workers consuming it}) within `timeout`."""
    replies: dict[str, Any] = app.control.inspect(timeout=timeout).active_queues() or {}
    by_queue = {queue: sorted(w for w, queues in replies.items() if any(q.get("name") == queue for q in queues))
                for queue in ALL_QUEUES}
    return len(replies), by_queue
