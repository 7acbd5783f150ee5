"""The broker as both sides see it: the Celery configuration, who consumes which queue,
and how many messages wait in each.

Both sides must agree on routes and on the broker's visibility timeout, so both build
their app from `celery_config`. The other two ask the broker through the sending app, by
name: no worker code needed.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from producer.core.quorum_queues import quorum_config
from producer.core.settings import Settings
from producer.core.store import sentinel_url
from producer.core.task_names import ALL_QUEUES, ROUTES


def celery_config(settings: Settings) -> dict[str, Any]:
    transport: dict[str, Any] = {"visibility_timeout": settings.visibility_timeout}
    if sentinel_url.is_sentinel(settings.broker_url):
        # kombu's Sentinel transport takes the master's name from here, not from the URL.
        # A failover can leave connections to the dead master half-open (a partition, not a
        # crash): a socket timeout lets a publish fail and reconnect to the new master
        # instead of waiting forever (kombu's own advice for failover).
        transport.update(master_name=settings.sentinel_master, socket_timeout=30, socket_connect_timeout=5)
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "task_routes": ROUTES,
        "task_default_queue": "submit",
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        # At-least-once: a message is acked after its task ran, and the message of a
        # child that died is re-queued. The job record makes a second run a no-op.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Bounded worker memory whatever is in flight (SONGQUEUE_WORKER_ETA_TASK_LIMIT):
        # countdowns past the cap stay in the broker until a held one runs.
        "worker_eta_task_limit": settings.worker_eta_task_limit or None,
        # Celery counts KiB; a child is replaced after the task that took it past the limit.
        "worker_max_memory_per_child": settings.worker_max_memory_per_child * 1024 or None,
        "task_time_limit": settings.task_time_limit,
        "task_soft_time_limit": max(1, settings.task_time_limit - 30),
        # Flower sees only events.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        # Deploys (Celery 5.5+ soft shutdown): on SIGQUIT, or SIGTERM with REMAP_SIGTERM=SIGQUIT,
        # running tasks get this long, then the worker stops them and hands every message it
        # holds (countdowns included) back to the broker at once: a bounded stop that ends
        # before the orchestrator's SIGKILL, which would leave them invisible until the
        # visibility timeout. An idle worker skips the wait (its countdowns go back at once).
        "worker_soft_shutdown_timeout": settings.worker_soft_shutdown_timeout,
        # No watchdog and no retention sweep here: every worker runs their rounds on a timer
        # (workers/watchdog_timer.py), so recovery needs no beat and no queue; beat runs only the playlists.
        "enable_utc": True,
        "timezone": "UTC",
        # RabbitMQ quorum queues with countdowns in the broker (SONGQUEUE_AMQP_QUEUE_TYPE).
        **quorum_config(settings),
    }


def consumers(app: Celery, timeout: float = 1.0) -> tuple[int, dict[str, list[str]]]:
    """(workers that answered, {queue: the names of the workers consuming it}) within `timeout`
    (`celery inspect active_queues`)."""
    replies: dict[str, Any] = app.control.inspect(timeout=timeout).active_queues() or {}
    by_queue = {queue: sorted(w for w, queues in replies.items() if any(q.get("name") == queue for q in queues))
                for queue in ALL_QUEUES}
    return len(replies), by_queue


def queue_depths(celery: Celery) -> dict[str, int]:
    """Messages waiting in each songqueue queue, asked of the broker (Redis or AMQP alike)."""
    depths: dict[str, int] = {}
    with celery.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1)
        for queue in ALL_QUEUES:
            channel = conn.channel()
            try:
                depths[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
            except conn.channel_errors:
                depths[queue] = 0  # not declared yet: nothing was ever sent to it
            finally:
                try:
                    channel.close()
                except conn.connection_errors + conn.channel_errors:
                    pass
    return depths
