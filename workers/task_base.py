"""The base class of every songqueue task."""

from __future__ import annotations

from typing import Any

from celery import Task


class SongqueueTask(Task):
    def retry(self, *args: Any, **options: Any) -> Any:
        """Celery's retry, but the new message keeps the argsrepr of the one being retried,
        so Flower goes on showing the job id, provider and prompt (not the raw arguments)."""
        options.setdefault("argsrepr", getattr(self.request, "argsrepr", None))
        return super().retry(*args, **options)
