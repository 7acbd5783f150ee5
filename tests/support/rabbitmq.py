"""A RabbitMQ virtual host of its own for each test stack.

The queue names are fixed (producer/core/task_names.py), and the tests run in parallel processes;
on one shared vhost a worker of one test would take another test's messages and a purge would
empty another test's queues. A fresh vhost per stack isolates them without any change to the
names the code uses. Needs `rabbitmqctl` for the broker's node (as .ci/run does).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote, urlparse, urlunparse

from tests.support.prerequisites import missing


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def private_vhost(amqp_url: str) -> Iterator[str]:
    """`amqp_url` moved onto a new, empty vhost (deleted afterwards, queues and all)."""
    if not shutil.which("rabbitmqctl"):
        missing("rabbitmqctl not on PATH: each RabbitMQ test needs a vhost of its own")
    parts = urlparse(amqp_url)
    vhost = f"songqueue-test-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, unquote(parts.username or "guest"), ".*", ".*", ".*")
        yield urlunparse(parts._replace(path="/" + quote(vhost, safe="")))
    finally:
        _rabbitmqctl("delete_vhost", vhost)
