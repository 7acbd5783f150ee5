"""The notify hook: the endpoint a gateway calls when one of its tasks changes status.

The HTTP API serves it at `POST /hooks/{provider}` (e.g. `/hooks/udio`, producer/api/hooks.py;
`songqueue hooks` runs the same server on the hook's port); point SONGQUEUE_NOTIFY_HOOK_URL
at it and the Udio provider sends that URL with every submit.
The gateways POST the task object of their fetch answer (`{"task_id": ..., "status": ...}`;
an enveloped `{"data": {...}}` is accepted too).

The body is never trusted for state: it only names the upstream task. The job is found
through the index the submit step writes (producer.core.store.keys.upstream_task), and gets one
*one-shot* poll (`songqueue.poll` with `once=True`) under its current fencing token: the
poll fetches the upstream itself, merges what it sees, and never schedules another poll,
so the countdown chain stays the only chain. So a forged or replayed call can do no more
than cause one extra poll, and at most one per job per SONGQUEUE_NOTIFY_MIN_INTERVAL (a
Redis SET NX key). Calls that report a known running status are acknowledged without a
poll: only the end of a task is worth getting early. Polling stays the fallback for hooks
that never come.

A call whose URL carries a valid signed job id (`?job=&sig=`, producer/core/hook_link.py,
signed for the job's current run) can do one thing more: name the upstream task of a job that has none, because its submit's
answer was lost (a 5xx, a timeout, a dropped connection, a worker killed mid-call). The id
is written once (compare-and-set on the record's version, only while the job is SUBMITTING
with no task id and none noted), and when the submit already waits for it
(`uncertain_submit`) the submit is sent again to record it and start polling
(workers/steps/uncertain.py). A bad signature is refused (403) and nothing is written; a job
that already has its task id is left to the task-id path above.

Like the rest of producer/, this sends tasks by name and never imports worker code.
"""

from __future__ import annotations

import logging
from typing import Any

from producer.api import bounded_json
from producer.core import hook_link, task_names
from producer.core.broker import celery_config
from producer.core.models.job_record import WAITING_STATES, JobRecord, JobState
from producer.core.quorum_queues import SongqueueCelery
from producer.core.settings import POLLED_PROVIDERS, Settings
from producer.core.store.job_store import JobStore

log = logging.getLogger("songqueue.hooks")

# Statuses the gateways of this family report while a task runs (docs/upstream-contract.md, "Udio through an aggregator gateway").
# Anything else, a missing status included, may be the end and earns a poll.
RUNNING_STATUSES = frozenset({"NOT_START", "SUBMITTED", "QUEUED", "IN_PROGRESS"})
# A task id we would store: what the gateways issue (UUIDs and the like), bounded.
MAX_TASK_ID = 128
# A gateway's task object is small and flat: bounds for what a hook body may be.
MAX_BODY = 64 << 10
MAX_DEPTH = 16
# Tries of the compare-and-set against a submit step writing the same record.
_TRIES = 5


class Forbidden(Exception):
    """The call carries a job id whose signature does not check: refused, nothing written."""


class Malformed(Exception):
    """A body past the hook's bounds: `status` 413 (size) or 422 (nesting), as problem+json."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class Hooks:
    """What a hook call does, apart from HTTP: (status code, JSON answer) for a body."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = JobStore.from_url(settings.job_store_url, settings.key_prefix, settings.job_retention,
                                       settings.sentinel_master)
        self.celery = SongqueueCelery("songqueue-hooks")
        self.celery.conf.update(celery_config(settings))

    def handle(self, provider: str, body: bytes, job: str | None = None,
               sig: str | None = None) -> tuple[int, dict[str, Any]]:
        """`job`, `sig`: the query of a per-job notify URL, when the call came to one."""
        if provider not in POLLED_PROVIDERS:
            return 404, {"error": f"no hook for provider {provider!r}"}
        try:
            task = _task_object(bounded_json.loads(body, MAX_BODY, MAX_DEPTH))
        except bounded_json.TooLarge as exc:
            raise Malformed(413, str(exc)) from None
        except bounded_json.TooDeep as exc:
            raise Malformed(422, str(exc)) from None
        except (ValueError, UnicodeDecodeError):
            return 400, {"error": "the body must be a JSON task object with a task_id"}
        task_id = str(task.get("task_id") or "").strip()
        if not task_id:
            return 400, {"error": "the body must be a JSON task object with a task_id"}
        if job is not None or sig is not None:
            # Checked against the job's current run: a URL made for a run a replay replaced no
            # longer opens anything. An unknown job is refused alike, so no id is confirmed.
            current = self.store.get(job) if job else None
            if current is None or not hook_link.verify(self.settings, provider, job or "", current.run, sig or ""):
                raise Forbidden("the job and sig query parameters do not match: not a notify URL songqueue made "
                                "for this run of the job")
            if len(task_id) > MAX_TASK_ID or not task_id.isprintable() or any(c.isspace() for c in task_id):
                return 400, {"error": f"task_id must be at most {MAX_TASK_ID} printable characters without spaces"}
            named = self._name_task(provider, job or "", task_id)
            if named is not None:
                return named
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

    def _name_task(self, provider: str, job_id: str, task_id: str) -> tuple[int, dict[str, Any]] | None:
        """A signed call about a job without a task id: note the id. None: the job has its
        task id, so the task-id path decides (a poll, or nothing)."""
        for _ in range(_TRIES):
            record = self.store.get(job_id)
            if record is None or record.provider != provider:
                return 404, {"error": "unknown job"}
            if record.upstream_task_id is not None:
                return None
            if record.state != JobState.SUBMITTING:
                if record.state.terminal:
                    # Too late to reconcile (the job's end is announced); the operator's trail.
                    log.warning("job %s ended %s without an upstream task id; the gateway's notify hook names "
                                "task %s (it may have been billed)", job_id, record.state.value, task_id[:64])
                return 200, {"result": "ignored", "reason": f"job is {record.state.value}"}
            if record.notified_task_id is not None:
                if record.notified_task_id == task_id and record.uncertain_submit is not None:
                    # The earlier send may have been lost; the submit is fenced, and a repeat is throttled.
                    if not self.store.claim_hook_poll(record.id, self.settings.notify_min_interval):
                        return 200, {"result": "throttled"}
                    self._send_submit(record)
                    return 202, {"result": "reconciling"}
                return 200, {"result": "ignored", "reason": "a task id was already noted for this job"}

            def note(r: JobRecord) -> None:
                r.notified_task_id = task_id

            written = self.store.apply(job_id, {JobState.SUBMITTING}, mutate=note, version=record.version)
            if written is None:
                continue  # the submit step wrote meanwhile: decide again on what it wrote
            log.warning("job %s: the notify hook names upstream task %s while the job has none", job_id,
                        task_id[:64], extra={"job_id": job_id, "upstream_task_id": task_id})
            if written.uncertain_submit is None:
                return 202, {"result": "task id noted"}  # the submit is still in its call: it reads the note
            self._send_submit(written)
            return 202, {"result": "reconciling"}
        return 503, {"error": "the job is changing; try again"}

    def _send_submit(self, record: JobRecord) -> None:
        self.celery.send_task(task_names.SUBMIT, args=[record.id, record.token],
                              argsrepr=f"job={record.id} token={record.token} (notify hook names its task)")


def _task_object(payload: Any) -> dict[str, Any]:
    """The task object, bare or inside a fetch-style envelope ({"code", "data": {...}})."""
    if isinstance(payload, dict) and "task_id" not in payload and isinstance(payload.get("data"), dict):
        payload = payload["data"]
    if not isinstance(payload, dict):
        raise ValueError("not an object")
    return payload
