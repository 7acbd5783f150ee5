"""The base class of every songqueue task."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from celery import Task

# Set by workers.steps.common.end_job when the running task ends its job FAILED or TIMED_OUT.
_ended: ContextVar[str | None] = ContextVar("songqueue_job_failed", default=None)


class JobFailed(Exception):
    """Raised after a task ended its job FAILED (or TIMED_OUT), once everything is recorded,
    so Flower and Celery's events show that task as failed rather than succeeded. The job
    record is already final; the message is acked like any other (acks_late acks failures)."""


def note_job_failed(description: str) -> None:
    _ended.set(description)


class SongqueueTask(Task):
    # Expected: logged by Celery in one line, without a traceback.
    throws = (JobFailed,)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        token = _ended.set(None)
        try:
            result = super().__call__(*args, **kwargs)
            failed = _ended.get()
        finally:
            _ended.reset(token)
        if failed is not None and not self.request.called_directly:
            raise JobFailed(failed)
        return result

    def retry(self, *args: Any, **options: Any) -> Any:
        """Celery's retry, but the new message keeps the argsrepr of the one being retried,
        so Flower goes on showing the job id, provider and prompt (not the raw arguments)."""
        options.setdefault("argsrepr", getattr(self.request, "argsrepr", None))
        return super().retry(*args, **options)
