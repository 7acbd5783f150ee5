"""One wrapper for every job step: `@step(...)` owns what each task module used to repeat.

In the manner of dramatiq's middleware, around the step's own logic:

1. read the job record (`runtime.store().get(job_id)`); a missing job ends the run;
2. the expected state: a job in any other state has moved on, and the run does nothing;
3. the fence: the message's fencing `token` (the watchdog bumps it when it resends a step,
   so the original, delivered again later, does nothing), or the job's `run` (a replay
   began another run: a download or finalize of the old one is dropped, logged), or the
   poll chain's `link` on top of the token (below);
4. the faults: a TransientError goes to the one retry policy (`retry_or_give_up`), which
   ends the job past the step's bound; a PermanentError ends the job at once; both with
   the fault's own code, and its message after the step's `Run.where` ("song 1 audio: ").

The step's function takes a `Run` (the task, the record as read, the message's
arguments) in place of the job id. Hooks: `before_retry(run, exc)` runs before a
transient fault is retried (count it, move the job back; False: no retry), and `end(run,
code, message, permanent)` replaces ending the job (the poll counts its fetches; the
archive only logs).

The poll chain: polling is a chain of `retry(countdown=...)` links. With acks_late, a worker
killed after `retry()` published the next link but before the running one was acked gets
the running one redelivered; that copy would publish a successor of its own, and two
chains would poll the same job under the same fencing token for the rest of its life. So
each link is named: before a link publishes its successor, it writes the successor's name,
under the job's token, to `{prefix}:polllink:{job_id}` and the successor carries it (the
`link` argument). A link whose name is not the one written there has been succeeded already
(or lost a race to another copy of itself) and drops itself. The first link of a token's
chain (sent by the submit or the watchdog) has no name; it runs unless a successor was
already named under its token. The notify hook's one-shot polls (`once`) never publish a
successor and are not checked.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal

import redis
from celery import Task

from producer.core.models.job_record import JobRecord, JobState
from producer.core.store import keys
from workers import metrics, runtime
from workers.retry_policy import retry_or_give_up
from workers.steps.common import end_job, log
from workers.upstream.errors import PermanentError, TransientError

# Refreshed by every link; a chain that has not moved for this long is over (its job
# timed out long before), and a missing key lets the next link through.
KEEP_SECONDS = 2 * 24 * 3600

Fence = Literal["token", "run", "link"]


@dataclass
class Run:
    """One run of a step: the task, the record as read, the message's arguments by name."""

    task: Task
    record: JobRecord
    step: str
    args: dict[str, Any]
    ends: Collection[JobState]
    fence: Fence | None
    # Put before a fault's message: which part of the step met it ("song 1 audio: ").
    where: str = ""
    # Replaces the step's `before_retry` from here on (set once the run has something to undo).
    before_retry: Callable[[Run, TransientError], bool] | None = field(default=None)

    @property
    def job_id(self) -> str:
        return self.record.id

    def end_job(self, code: str, message: str) -> JobRecord | None:
        """End the job FAILED from the states the step may end it in, fenced by the run
        (a download or finalize of a replaced run writes nothing)."""
        return end_job(self.job_id, JobState.FAILED, code, message, expect=self.ends,
                       run=self.args["run"] if self.fence == "run" else None)


StepBody = Callable[..., None]
Ending = Callable[[Run, str, str, bool], object]


def step(name: str, *, expect: Collection[JobState], fence: Fence | None = None,
         ends: Collection[JobState] | None = None, label: Callable[[dict[str, Any]], str] | None = None,
         before_retry: Callable[[Run, TransientError], bool] | None = None,
         end: Ending | None = None) -> Callable[[StepBody], StepBody]:
    """Wrap step `name` (its retry bound in workers.retry_policy): `expect`, the states it
    runs in; `fence`: "token", "run" or "link" (the token and the poll chain); `ends`: the
    states a fault may end the job from (default `expect`); `label`: the message's part of
    the job, for the log of a dropped run ("song 1 audio")."""
    ending_states = expect if ends is None else ends

    def wrap(body: StepBody) -> StepBody:
        signature = inspect.signature(body)

        @functools.wraps(body)
        def run_step(task: Task, job_id: str, *args: Any, **kwargs: Any) -> None:
            record = runtime.store().get(job_id)
            if record is None:
                log.info("job %s: %s for an unknown job", job_id, name)
                return
            bound = signature.bind(None, *args, **kwargs)  # the message's arguments, by name
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            if record.state not in expect or not _fenced(name, record, arguments, fence, label):
                return
            run = Run(task, record, name, arguments, ending_states, fence, before_retry=before_retry)
            with metrics.batched():  # the run's observations in one round trip at its end
                try:
                    body(run, *args, **kwargs)
                except TransientError as exc:
                    if run.before_retry is not None and not run.before_retry(run, exc):
                        return
                    code, where = exc.code, run.where
                    retry_or_give_up(task, runtime.settings(), name, exc.message, retry_after=exc.retry_after,
                                     give_up=lambda message: _end(run, code, where + message, False, end))
                except PermanentError as exc:
                    _end(run, exc.code, run.where + exc.message, True, end)

        # The task's signature, which Celery checks a message's arguments against: the task
        # and the job id where the body takes its Run.
        first, *rest = signature.parameters.values()
        head = [first.replace(name="task", annotation=Task), first.replace(name="job_id", annotation=str)]
        run_step.__signature__ = signature.replace(parameters=[*head, *rest])  # type: ignore[attr-defined]
        return run_step

    return wrap


def _end(run: Run, code: str, message: str, permanent: bool, end: Ending | None) -> object:
    if end is not None:
        return end(run, code, message, permanent)
    return run.end_job(code, message)


def _fenced(name: str, record: JobRecord, args: dict[str, Any], fence: Fence | None,
            label: Callable[[dict[str, Any]], str] | None) -> bool:
    """True when this message is still the job's live one for the step."""
    if fence in ("token", "link") and record.token != args["token"]:
        return False  # the watchdog has handed the step to a newer message
    if fence == "link" and not args["once"]:
        store = runtime.store()
        if not holds(store.redis, store.prefix, record.id, args["token"], args["link"]):
            log.warning("job %s: dropped a duplicate poll (link %r): its successor already runs the chain",
                        record.id, args["link"] or "first", extra={"job_id": record.id})
            return False
    if fence == "run" and record.run != args["run"]:
        what = f" ({label(args)})" if label else ""
        log.warning("job %s: dropped a %s%s of run %d: the job is on run %d", record.id, name, what, args["run"],
                    record.run, extra={"job_id": record.id})
        return False
    return True


def holds(client: redis.Redis, prefix: str, job_id: str, token: int, link: str) -> bool:
    """True when `link` is the job's live poll link under `token` (or the first one of its chain)."""
    raw = client.get(keys.poll_link(prefix, job_id))
    if raw is None:
        return True
    named_token, _, named = raw.decode().partition(":")
    if int(named_token) != token:
        return True  # a chain under another token: the record's token fences that one
    return named == link


def name_successor(client: redis.Redis, prefix: str, job_id: str, token: int) -> str:
    """Name the next poll link (written before it is published); returns its name."""
    link = uuid.uuid4().hex[:12]
    client.set(keys.poll_link(prefix, job_id), f"{token}:{link}", ex=KEEP_SECONDS)
    return link
