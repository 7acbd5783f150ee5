"""RabbitMQ for a benchmark: a vhost of its own (deleted afterwards) and what its queues hold.

Needs `rabbitmqctl` for the broker's node. Only the bench's own vhost is read or changed.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlparse, urlunparse

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _ctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True,
                          timeout=120).stdout


@contextmanager
def vhost(amqp_url: str) -> Iterator[tuple[str, str]]:
    """(the broker URL on a new empty vhost, the vhost's name); the vhost is deleted on the way out."""
    parts = urlparse(amqp_url)
    name = f"songqueue-bench-{uuid.uuid4().hex[:8]}"
    _ctl("add_vhost", name)
    try:
        _ctl("set_permissions", "-p", name, unquote(parts.username or "guest"), ".*", ".*", ".*")
        yield urlunparse(parts._replace(path="/" + quote(name, safe=""))), name
    finally:
        _ctl("delete_vhost", name)


@dataclass
class Holdings:
    ready: int  # task messages due, waiting for a worker
    unacked: int  # delivered to a worker and not acked yet: running, reserved or held countdowns
    delayed: int  # countdowns waiting in the celery_delayed_* queues (quorum layout)
    memory: int  # bytes the vhost's queues take in the broker


def holdings(name: str) -> Holdings:
    """What the queues of vhost `name` hold now (one `rabbitmqctl list_queues`, about a second)."""
    out = _ctl("--no-table-headers", "list_queues", "-p", name, "name", "messages_ready",
               "messages_unacknowledged", "memory")
    ready = unacked = delayed = memory = 0
    for line in out.splitlines():
        if not line.strip():
            continue
        queue, r, u, m = line.split("\t")
        memory += int(m)
        if queue.startswith("celery_delayed_"):
            delayed += int(r) + int(u)
        elif not queue.startswith(("celery@", "celeryev")) and ".pidbox" not in queue:
            ready, unacked = ready + int(r), unacked + int(u)
    return Holdings(ready, unacked, delayed, memory)
