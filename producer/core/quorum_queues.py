"""RabbitMQ quorum queues, with countdowns kept in the broker (SONGQUEUE_AMQP_QUEUE_TYPE=quorum).

On classic queues a worker fetches a countdown (poll, backoff) message at once and holds it
until it is due (Celery raises its prefetch for each), so what waits on the upstream sits
in worker memory. With quorum queues Celery uses RabbitMQ's native delayed delivery: a
countdown is published to the `celery_delayed_27` topic exchange with the delay's 28 bits
in its routing key, waits in the `celery_delayed_{level}` queues (message TTL 2^level s,
dead-lettered level by level), and reaches its task queue through the
`celery_delayed_delivery` exchange when it is due. The worker holds nothing meanwhile.

What that needs, and why each piece is here:
- Every task queue declared as a quorum queue on a **topic** exchange of its own name
  (Celery's native delayed delivery skips direct exchanges), by senders and workers alike:
  a sender only takes the delayed route when its own app knows the queues are quorum.
- Every task queue declared by every worker, not only the ones it consumes: the worker
  binds all of the app's queues to the delayed exchanges at start, and a binding to a queue
  nobody declared yet fails (a download-only worker started before any poll worker).
- Countdowns in whole seconds, rounded up: the delayed route counts whole seconds, Celery
  truncates (a 0.5 s countdown raises, a 2.7 s one arrives 0.7 s early and the worker holds
  it, which on quorum queues also holds one of its fixed prefetch slots).
"""

from __future__ import annotations

import math
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from producer.core.settings import Settings
from producer.core.task_names import ALL_QUEUES

QUORUM = {"x-queue-type": "quorum"}


def task_queues() -> tuple[Queue, ...]:
    """The four task queues as quorum queues, each on a topic exchange of its own name."""
    return tuple(Queue(name, Exchange(name, type="topic"), routing_key=name, queue_arguments=QUORUM)
                 for name in ALL_QUEUES)


def quorum_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings of the quorum layout; none for classic queues (Celery's defaults)."""
    if settings.amqp_queue_type != "quorum":
        return {}
    return {
        "task_queues": task_queues(),
        # A queue the routes do not name (none today) would be made the same way.
        "task_default_queue_type": "quorum",
        "task_default_exchange_type": "topic",
        "task_create_missing_queue_type": "quorum",
        "task_create_missing_queue_exchange_type": "topic",
        # The celery_delayed_* queues replicated like the task queues.
        "broker_native_delayed_delivery_queue_type": "quorum",
        # Quorum queues have no global QoS: the worker's prefetch becomes per consumer and static.
        "worker_detect_quorum_queues": True,
    }


def uses_quorum(app: Celery) -> bool:
    return app.conf.task_default_queue_type == "quorum"


def broker_countdown(countdown: float) -> int:
    """A countdown as the delayed route can keep it: whole seconds, never earlier than asked."""
    return max(1, math.ceil(countdown))


class SongqueueCelery(Celery):
    """Celery, with countdowns rounded up to whole seconds on quorum queues (see above)."""

    def send_task(self, name: str, args: Any = None, kwargs: Any = None, countdown: float | None = None,
                  eta: Any = None, **options: Any) -> Any:
        if countdown and countdown > 0 and uses_quorum(self):
            countdown = broker_countdown(countdown)
        return super().send_task(name, args, kwargs, countdown, eta, **options)


def declare_task_queues(app: Celery) -> None:
    """Declare every task queue (and its exchange), so the delayed exchanges can bind to all."""
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=10)
        channel = connection.default_channel
        for queue in app.amqp.queues.values():
            queue.bind(channel).declare()
