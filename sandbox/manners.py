"""Answer-level manners every endpoint shares: tasks not known (yet, or any more),
redirects, and bodies that trickle.

Each function applies one directive (sandbox/faults.py) to an answer and counts it in
the stats, so a test can prove the manner landed: in ``faults`` under the directive's
name, per task or prompt, and in a total (``unknown_answered``, ``expired_answered``,
``redirected``, ``trickled``/``trickle_completed``).
"""

from __future__ import annotations

from sandbox.app import Sandbox
from sandbox.tasks import EXPIRED, Task, hidden
from sandbox.wire import Response, redirect, task_not_found

HIDDEN_TOTALS = {EXPIRED: "expired_answered"}


def hidden_from(app: Sandbox, task: Task, now: float) -> str | None:
    """Why ``task`` is not known at ``now``, counted; None when it is known."""
    why = hidden(task, now)
    if why is not None:
        app.stats.count(HIDDEN_TOTALS.get(why, "unknown_answered"))
        app.stats.fault(why, task=task.task_id)
    return why


def not_found_if_hidden(app: Sandbox, task: Task, now: float) -> Response | None:
    """A single fetch's 404 for a task written late or forgotten; None when it is known."""
    return task_not_found() if hidden_from(app, task, now) is not None else None


def redirect_if_asked(app: Sandbox, task: Task | None, name: str, status: int,
                      location: str | None = None, prompt: str | None = None) -> Response | None:
    """A ``status`` redirect to the directive ``name``'s URL (or ``location``), counted; or None."""
    url = location if location is not None else (task.directives.text(name) if task is not None else None)
    if not url:
        return None
    app.stats.count("redirected")
    app.stats.fault(name, task=task.task_id if task is not None else None, prompt=prompt)
    return redirect(status, url)


def trickle(app: Sandbox, response: Response, millis: float | None, name: str,
            task: str | None = None, prompt: str | None = None) -> Response:
    """Send ``response``'s body one byte every ``millis`` ms (headers at once), counted."""
    if not millis:
        return response
    app.stats.count("trickled")
    app.stats.fault(name, task=task, prompt=prompt)
    response.trickle_interval_s = millis / 1000.0
    previous = response.on_complete

    def completed() -> None:
        app.stats.count("trickle_completed")
        if previous is not None:
            previous()

    response.on_complete = completed
    return response
