"""Notify hooks, called the way the gateways call them.

A submit body may carry ``notify_hook`` (a URL, at the top level beside ``gen_params``).
The family convention (docs/upstream-contract.md, "Notify hook") is a POST of the same task object
the fetch answer carries in ``data`` to that URL on every status change:
SUBMITTED -> IN_PROGRESS -> SUCCESS or FAILURE. One background thread watches the tasks
that have a hook and wakes at their next status change (a task's status is a function of
time, see tasks.timeline); each POST runs in a thread of its own, once, with a short
timeout, so a slow receiver delays nobody. ``hook_calls``/``hook_failures`` and
``hooks_by_task`` in the stats count them.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from sandbox.tasks import START_FRACTION, SUBMITTED, Task, timeline

if TYPE_CHECKING:
    from sandbox.app import Sandbox

POST_TIMEOUT = 5.0
# No proxies from the environment: the hook receiver is local in tests and benchmarks.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
LONGEST_SLEEP = 1.0  # a safety net: a wake-up is due at every status change anyway


class HookNotifier:
    def __init__(self, app: Sandbox) -> None:
        self.app = app
        self._last: dict[str, tuple[Task, str]] = {}  # task id -> (task, status last notified)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, task: Task) -> None:
        with self.app.lock:
            self._last[task.task_id] = (task, SUBMITTED)  # a new task starts SUBMITTED: no call for that
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sandbox-hooks", daemon=True)
                self._thread.start()
        self._wake.set()

    def clear(self) -> None:
        with self.app.lock:
            self._last.clear()

    def _run(self) -> None:
        while True:
            self._wake.clear()
            due = self._notify_changes(time.time())
            self._wake.wait(max(0.0, min(due - time.time(), LONGEST_SLEEP)))

    def _notify_changes(self, now: float) -> float:
        """Call the hook of every task whose status changed; return when to look next."""
        from sandbox.udio import task_payload  # not at the top: udio -> app -> hooks

        with self.app.lock:
            watched = list(self._last.items())
        due = now + LONGEST_SLEEP
        for task_id, (task, last) in watched:
            line = timeline(task, now)
            if line.status != last:
                body = json.dumps(task_payload(self.app, task, now)["data"], ensure_ascii=False).encode()
                threading.Thread(target=self._post, args=(task, body), name="sandbox-hook-post", daemon=True).start()
            with self.app.lock:
                ended = line.terminal or (task.directives.has("never_finish") and line.status != SUBMITTED)
                if ended:
                    self._last.pop(task_id, None)
                elif task_id in self._last:
                    self._last[task_id] = (task, line.status)
            if not ended:
                due = min(due, _next_change(task, now))
        return due

    def _post(self, task: Task, body: bytes) -> None:
        self.app.stats.count("hook_calls", self.app.stats.hooks_by_task, task.task_id)
        request = urllib.request.Request(task.notify_hook, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with _OPENER.open(request, timeout=POST_TIMEOUT) as response:
                ok = 200 <= response.status < 300
        except (urllib.error.URLError, OSError, ValueError):
            # HTTPError is a URLError. Sent once: whether the gateways retry is not documented.
            ok = False
        if not ok:
            self.app.stats.count("hook_failures")


def _next_change(task: Task, now: float) -> float:
    """The next moment the task's status may change: when it starts, then when it ends."""
    for moment in (task.submit_time + START_FRACTION * task.generation_time,
                   task.submit_time + task.generation_time):
        if moment > now:
            return moment + 0.001  # just past it, so the status has changed when we look
    return now + LONGEST_SLEEP
