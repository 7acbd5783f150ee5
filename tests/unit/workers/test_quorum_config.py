"""SONGQUEUE_AMQP_QUEUE_TYPE: the quorum layout both senders and workers build their app from."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from producer.core.broker import celery_config
from producer.core.quorum_queues import broker_countdown
from producer.core.settings import Settings
from producer.core.task_names import ALL_QUEUES

AMQP = "amqp://guest:guest@127.0.0.1:5672/vh"


def test_classic_keeps_celerys_default_queues() -> None:
    config = celery_config(Settings(broker_url=AMQP, redis_url="redis://localhost:6379/1"))
    assert "task_queues" not in config and "task_default_queue_type" not in config


def test_quorum_declares_every_task_queue_quorum_on_a_topic_exchange() -> None:
    config = celery_config(Settings(broker_url=AMQP, redis_url="redis://localhost:6379/1", amqp_queue_type="quorum"))
    queues = {q.name: q for q in config["task_queues"]}
    assert set(queues) == set(ALL_QUEUES)
    for name, queue in queues.items():
        # Native delayed delivery skips direct exchanges: a countdown would wait in the worker.
        assert (queue.exchange.name, queue.exchange.type, queue.routing_key) == (name, "topic", name)
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
    assert config["task_default_queue_type"] == config["broker_native_delayed_delivery_queue_type"] == "quorum"
    assert config["task_default_queue"] in queues


def test_quorum_on_a_redis_broker_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="amqp_queue_type=quorum needs a RabbitMQ broker_url"):
        Settings(broker_url="redis://localhost:6379/0", amqp_queue_type="quorum")
    with pytest.raises(ValidationError, match="amqp_queue_type"):
        Settings(broker_url=AMQP, redis_url="redis://localhost:6379/1", amqp_queue_type="stream")


@pytest.mark.parametrize(("asked", "kept"), [(0.01, 1), (0.5, 1), (1.0, 1), (2.7, 3), (30.0, 30)])
def test_countdowns_on_the_delayed_route_are_whole_seconds_never_early(asked: float, kept: int) -> None:
    assert broker_countdown(asked) == kept


def test_the_app_rounds_countdowns_up_only_on_quorum_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    from celery import Celery

    from producer.core.quorum_queues import SongqueueCelery

    sent: list[float | None] = []
    # Celery's own send_task (which would publish) stands in: what reaches it is the point.
    monkeypatch.setattr(Celery, "send_task", lambda self, name, args=None, kwargs=None, countdown=None, eta=None,
                        **options: sent.append(countdown))
    for queue_type, expected in (("quorum", [1, 3, None]), ("classic", [0.4, 2.2, None])):
        app = SongqueueCelery("t")
        app.conf.update(celery_config(Settings(broker_url=AMQP, redis_url="redis://localhost:6379/1",
                                               amqp_queue_type=queue_type)))
        sent.clear()
        for countdown in (0.4, 2.2, None):
            app.send_task("songqueue.poll", ["job", 1], countdown=countdown)
        assert sent == expected, queue_type


def test_a_failover_list_of_nodes_reaches_kombu_as_alternates() -> None:
    # docs/operations.md "RabbitMQ quorum queues": every node of the cluster in the URL,
    # `;`-separated; kombu tries the next one when a connection fails (round-robin).
    from celery import Celery

    from producer.core.fleet import mask_url

    nodes = [f"amqp://songqueue:s3cret@10.0.0.{n}:5672//" for n in (41, 42, 43)]
    settings = Settings(broker_url=";".join(nodes), redis_url="redis://localhost:6379/1", amqp_queue_type="quorum")
    app = Celery("t")
    app.conf.update(celery_config(settings))
    connection = app.connection_for_write()
    assert connection.alt == nodes
    assert connection.hostname == "10.0.0.41"
    assert "s3cret" not in mask_url(settings.broker_url) and mask_url(settings.broker_url).count("****") == 3
