"""The notify hook: the endpoint a gateway calls when one of its tasks changes status.

The HTTP API serves it at `POST /hooks/{provider}` (e.g. `/hooks/udio`, producer/api/hooks.py;
`songqueue hooks` runs the same server on the hook's port); point SONGQUEUE_NOTIFY_HOOK_URL
at it and the Udio provider sends that URL with every submit.
The gateways POST the task object of their fetch answer (`{"task_id": ..., "status": ...}`;
an enveloped `{"data": {...}}` is accepted too).

The body is never trusted for state: it only names the upstream task. The job is found
through the index the submit step writes (producer.store.keys.upstream_task), and gets one
*one-shot* poll (`songqueue.poll` with `once=True`) under its current fencing token: the
poll fetches the upstream itself, merges what it sees, and never schedules another poll,
so the countdown chain stays the only chain. So a forged or replayed call can do no more
than cause one extra poll, and at most one per job per SONGQUEUE_NOTIFY_MIN_INTERVAL (a
Redis SET NX key). Calls that report a known running status are acknowledged without a
poll: only the end of a task is worth getting early. Polling stays the fallback for hooks
that never come.

Like the rest of producer/, this sends tasks by name and never imports worker code.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from producer import task_names
from producer.client.celery_config import celery_config
from producer.client.quorum_queues import SongqueueCelery
from producer.models.job_record import WAITING_STATES
from producer.settings import POLLED_PROVIDERS, Settings
from producer.store.job_store import JobStore

log = logging.getLogger("songqueue.hooks")

# Statuses the gateways of this family report while a task runs (docs/upstream-contract.md, "Udio through an aggregator gateway").
# Anything else, a missing status included, may be the end and earns a poll.
RUNNING_STATUSES = frozenset({"NOT_START", "SUBMITTED", "QUEUED", "IN_PROGRESS"})


class Hooks:
    """What a hook call does, apart from HTTP: (status code, JSON answer) for a body."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = JobStore.from_url(settings.job_store_url, settings.key_prefix, settings.job_retention)
        self.celery = SongqueueCelery("songqueue-hooks")
        self.celery.conf.update(celery_config(settings))

    def handle(self, provider: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if provider not in POLLED_PROVIDERS:
            return 404, {"error": f"no hook for provider {provider!r}"}
        try:
            task = _task_object(json.loads(body))
        except (ValueError, UnicodeDecodeError):
            return 400, {"error": "the body must be a JSON task object with a task_id"}
        task_id = str(task.get("task_id") or "").strip()
        if not task_id:
            return 400, {"error": "the body must be a JSON task object with a task_id"}
        job_id = self.store.job_for_upstream_task(provider, task_id)
        record = self.store.get(job_id) if job_id else None
        if record is None or record.upstream_task_id != task_id:
            log.info("hook for unknown %s task %s", provider, task_id[:64])
            return 404, {"error": "unknown task"}
        if record.state not in WAITING_STATES:
            return 200, {"result": "ignored", "reason": f"job is {record.state.value}"}
        if str(task.get("status") or "").upper() in RUNNING_STATUSES:
            return 200, {"result": "ignored", "reason": "still running; polling covers it"}
        if not self.store.claim_hook_poll(record.id, self.settings.notify_min_interval):
            return 200, {"result": "throttled"}
        self.celery.send_task(task_names.POLL, args=[record.id, record.token], kwargs={"once": True},
                              argsrepr=f"job={record.id} token={record.token} once (notify hook)")
        log.info("job %s: notify hook for task %s: one poll sent", record.id, task_id)
        return 202, {"result": "poll sent"}


def _task_object(payload: Any) -> dict[str, Any]:
    """The task object, bare or inside a fetch-style envelope ({"code", "data": {...}})."""
    if isinstance(payload, dict) and "task_id" not in payload and isinstance(payload.get("data"), dict):
        payload = payload["data"]
    if not isinstance(payload, dict):
        raise ValueError("not an object")
    return payload
