"""The one JSON log formatter of every songqueue process (`SONGQUEUE_LOG_JSON=true`).

Workers and beat install it on Celery's handlers (workers/log_format.py); the servers
(`songqueue api`, `hooks`, `metrics`) on the root logger through `install_server_logging`.
It is python-json-logger's formatter: every `extra=` field of a log call (job_id,
upstream_task_id, provider, anything a later call adds) lands in the line without a list
to keep up to date here. Lives in the producer because the servers never import workers.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# The record attributes every line carries, under the names the docs and dashboards use.
_FIELDS = ["levelname", "name", "message", "task_name", "task_id", "processName"]
_RENAMED = {"levelname": "level", "name": "logger", "task_name": "task", "processName": "process",
            "exc_info": "exc"}
# Present (null) on every line, so a query on them never meets a missing key.
_ALWAYS = {"job_id": None, "upstream_task_id": None, "task_name": None, "task_id": None}
# uvicorn's copy of each message with terminal colours: noise in a JSON line.
_SKIPPED = [*RESERVED_ATTRS, "color_message"]


def json_formatter() -> logging.Formatter:
    return JsonFormatter(_FIELDS, rename_fields=_RENAMED, defaults=_ALWAYS, reserved_attrs=_SKIPPED,
                         timestamp="ts", json_ensure_ascii=False)


def install_server_logging(level: int = logging.INFO) -> bool:
    """With SONGQUEUE_LOG_JSON=true, every line of this process goes to stderr as JSON (the
    root logger's only handler). Returns whether it did, so a server can leave its own
    logging (uvicorn's) unconfigured and let its loggers propagate here."""
    from producer.core.settings import get_settings  # settings are read when a server starts, not on import

    if not get_settings().log_json:
        return False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return True
