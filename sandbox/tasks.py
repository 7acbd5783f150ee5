"""The in-memory task table and each task's generation timeline.

A task's state is a pure function of wall-clock time since submit (plus its
directives), not of how often it was polled: a client that polls rarely sees
the same outcome as one that polls often, which is what the poll benchmarks
compare.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sandbox.faults import Directives

SUBMITTED = "SUBMITTED"
IN_PROGRESS = "IN_PROGRESS"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"

FAIL_REASON = "sandbox: generation failed (content policy)"
START_FRACTION = 0.05  # status stays SUBMITTED for this share of the generation time
STAGGER_FRACTION = 0.5  # with "stagger", song 1 is ready at this share
SONGS_PER_TASK = 2


@dataclass
class Task:
    task_id: str
    prompt: str
    gen_params: dict[str, Any]
    dialect: str
    directives: Directives
    submit_time: float
    generation_time: float
    song_duration: float
    fails: bool
    size_mb: float | None = None
    # Where to POST the task object on every status change, as the gateways do (sandbox/hooks.py).
    notify_hook: str = ""
    song_ids: tuple[str, ...] = ()
    fetch_count: int = 0
    batch_named: int = 0  # batch fetches that named this task, for batch_absent_every
    # per file ("song/1", "cover/2", ...) -> download requests seen, for dl_* faults
    download_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Timeline:
    status: str
    progress: int  # percent
    start_time: int  # unix seconds, 0 until started
    finish_time: int  # unix seconds, 0 until terminal
    finished_songs: frozenset[int]  # 1-based indexes of songs that are ready

    @property
    def terminal(self) -> bool:
        return self.status in (SUCCESS, FAILURE)


def timeline(task: Task, now: float) -> Timeline:
    gen = task.generation_time
    never = task.directives.has("never_finish")
    frac = 1.0 if gen <= 0 else max(0.0, now - task.submit_time) / gen
    if never:
        frac = min(frac, 0.99)
    started = gen <= 0 or frac >= START_FRACTION
    done = frac >= 1.0 and not never
    if not started:
        status = SUBMITTED
    elif not done:
        status = IN_PROGRESS
    else:
        status = FAILURE if task.fails else SUCCESS
    finished: set[int] = set()
    if not task.fails:
        if done:
            finished = set(range(1, SONGS_PER_TASK + 1))
        elif task.directives.has("stagger") and frac >= STAGGER_FRACTION:
            finished = {1}
    return Timeline(
        status=status,
        progress=100 if done else min(99, int(frac * 100)),
        start_time=int(task.submit_time + START_FRACTION * gen) if started else 0,
        finish_time=int(task.submit_time + gen) if done else 0,
        finished_songs=frozenset(finished),
    )


STEP = 25  # percent: the stepwise progress model's step


def reported_status(task: Task, line: Timeline) -> str:
    """The status a fetch shows: SUBMITTED reads as the task's ``status_before`` if any."""
    before = task.directives.text("status_before")
    if line.status != SUBMITTED or before is None:
        return line.status
    return "" if before == "EMPTY" else before


def reported_progress(task: Task, line: Timeline) -> int | None:
    """The progress a fetch shows under the task's progress model; None: no field at all."""
    model = task.directives.text("progress") or "linear"
    if model == "none":
        return None
    if line.terminal or model == "linear":
        return line.progress
    if model == "stuck":
        return 0
    return line.progress // STEP * STEP  # stepwise


UNKNOWN_YET = "unknown_for"
EXPIRED = "expire"


def hidden(task: Task, now: float) -> str | None:
    """Why the gateway does not know ``task`` at ``now`` (a directive name), or None.

    Written late (``unknown_for``) or forgotten (``expire``): either way a fetch answers
    404 and a batch leaves the task out, while the generation clock runs on regardless.
    """
    age = now - task.submit_time
    expire = task.directives.number("expire")
    if expire is not None and age >= expire:
        return EXPIRED
    unknown = task.directives.number("unknown_for")
    if unknown is not None and age < unknown:
        return UNKNOWN_YET
    return None


def song_ready_time(task: Task, index: int) -> float:
    """When song ``index`` became (or will become) ready, for its created_at."""
    if index == 1 and task.directives.has("stagger"):
        return task.submit_time + STAGGER_FRACTION * task.generation_time
    return task.submit_time + task.generation_time


class TaskTable:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._tasks: dict[str, Task] = {}

    def create(self, **kwargs: Any) -> Task:
        task = Task(
            task_id=str(uuid.uuid4()),
            submit_time=time.time(),
            song_ids=tuple(str(uuid.uuid4()) for _ in range(SONGS_PER_TASK)),
            **kwargs,
        )
        with self._lock:
            self._tasks[task.task_id] = task
        return task

    def get(self, task_id: str) -> Task | None:
        with self._lock:
            return self._tasks.get(task_id)

    def next_fetch(self, task: Task) -> int:
        """Count a fetch of ``task``; return how many came before it."""
        with self._lock:
            task.fetch_count += 1
            return task.fetch_count - 1

    def next_batch(self, task: Task) -> int:
        """Count a batch fetch naming ``task``; return how many named it before (1-based after)."""
        with self._lock:
            task.batch_named += 1
            return task.batch_named

    def next_download(self, task: Task, file_key: str) -> int:
        with self._lock:
            seen = task.download_counts.get(file_key, 0)
            task.download_counts[file_key] = seen + 1
            return seen

    def clear(self) -> None:
        with self._lock:
            self._tasks.clear()

    def summary(self, now: float) -> dict[str, dict[str, Any]]:
        with self._lock:
            tasks = list(self._tasks.values())
        out: dict[str, dict[str, Any]] = {}
        for task in tasks:
            line = timeline(task, now)
            out[task.task_id] = {
                "prompt": task.prompt,
                "status": line.status,
                "submit_time": int(task.submit_time),
                "submitted_at": task.submit_time,  # unrounded, for tests that order tasks in time
                "finish_time": line.finish_time,
                # finish_time is whole seconds, as upstream; the poll benchmark needs better.
                "finished_at": task.submit_time + task.generation_time if line.terminal else None,
                "dialect": task.dialect,
            }
        return out
