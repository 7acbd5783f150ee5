"""Worker log lines: one JSON object per event with `SONGQUEUE_LOG_JSON=true`.

Every line carries the job id and the upstream task id where there is one: log calls pass
them as `extra={"job_id": ..., "upstream_task_id": ...}`, and a line logged inside a job's
task without them still gets the job id from the task's first argument. Installed on
Celery's own handlers through its `after_setup_logger` / `after_setup_task_logger`
signals, so Celery's lines (received, succeeded, retry) come out in the same shape.
The formatter is the one every songqueue process uses (producer/core/log_json.py,
python-json-logger): every `extra=` field of a call is kept. Messages never hold secrets
(keys are SecretStr and never formatted into a message).
"""

from __future__ import annotations

import logging
import re

from celery import current_task
from celery.signals import after_setup_logger, after_setup_task_logger

from producer.core import task_names
from producer.core.log_json import json_formatter
from producer.core.settings import get_settings

# Tasks whose first argument is a job id.
_JOB_TASKS = frozenset({task_names.SUBMIT, task_names.POLL, task_names.DOWNLOAD, task_names.FINALIZE})
# How producer.core.task_names.argsrepr starts.
_ARGSREPR_JOB = re.compile(r"job=([A-Za-z0-9_-]+)")


class JobContext(logging.Filter):
    """Fill in job_id (and Celery's task name and id) from the task being run, if any, or
    from the `job=ID` argsrepr of the task a Celery line is about ("received" lines are
    logged by the worker's main process, outside any task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = current_task
        request = getattr(task, "request", None) if task else None
        if request is not None and getattr(request, "id", None):
            record.task_name = getattr(task, "name", None)
            record.task_id = request.id
            if getattr(record, "job_id", None) is None and task.name in _JOB_TASKS and request.args:
                record.job_id = str(request.args[0])
        if isinstance(record.args, dict) and "id" in record.args:  # Celery's context of a task line
            record.task_name = getattr(record, "task_name", None) or record.args.get("name")
            record.task_id = getattr(record, "task_id", None) or record.args.get("id")
            match = _ARGSREPR_JOB.match(str(record.args.get("args", "")))
            if match and getattr(record, "job_id", None) is None:
                record.job_id = match.group(1)
        return True


def _install(logger: logging.Logger, **_: object) -> None:
    if not get_settings().log_json:
        return
    for handler in logger.handlers:
        handler.setFormatter(json_formatter())
        if not any(isinstance(f, JobContext) for f in handler.filters):
            handler.addFilter(JobContext())


after_setup_logger.connect(_install, weak=False)
after_setup_task_logger.connect(_install, weak=False)
