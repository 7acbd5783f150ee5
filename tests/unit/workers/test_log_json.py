"""SONGQUEUE_LOG_JSON: the one formatter of workers and servers keeps every `extra=` field."""

from __future__ import annotations

import io
import json
import logging

import pytest

from producer.core.log_json import install_server_logging, json_formatter
from producer.core.settings import get_settings
from workers import log_format


@pytest.fixture
def log_json(monkeypatch):
    monkeypatch.setenv("SONGQUEUE_LOG_JSON", "true")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _record(logger: logging.Logger, **extra: object) -> None:
    logger.warning("poll of %s failed", "job-1", extra=extra)


def test_a_worker_line_keeps_every_extra_field(log_json):
    out = io.StringIO()
    logger = logging.getLogger("songqueue.test.worker")
    logger.propagate = False
    logger.handlers[:] = [logging.StreamHandler(out)]
    log_format._install(logger)  # what Celery's after_setup_logger signal calls
    _record(logger, job_id="job-1", upstream_task_id="up-9", provider="udio", attempt=3)
    line = json.loads(out.getvalue())
    assert line["message"] == "poll of job-1 failed"
    assert line["level"] == "WARNING" and line["logger"] == "songqueue.test.worker"
    assert (line["job_id"], line["upstream_task_id"], line["provider"], line["attempt"]) == ("job-1", "up-9", "udio", 3)
    assert line["ts"].startswith("20")
    assert any(isinstance(f, log_format.JobContext) for f in logger.handlers[0].filters)


def test_fields_a_query_relies_on_are_present_when_null():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "plain", None, None)
    line = json.loads(json_formatter().format(record))
    assert {"ts", "level", "logger", "message", "job_id", "upstream_task_id", "task", "task_id", "process"} <= set(line)
    assert line["job_id"] is None


def test_servers_log_json_through_the_root_logger(log_json, capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        assert install_server_logging() is True
        # uvicorn's logger, left unconfigured by serve(), propagates here.
        logging.getLogger("uvicorn.error").info("Started", extra={"color_message": "\x1b[36mStarted", "job_id": "j2"})
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (line["logger"], line["message"], line["job_id"]) == ("uvicorn.error", "Started", "j2")
    assert "color_message" not in line


def test_without_the_setting_servers_keep_their_own_logging(monkeypatch):
    monkeypatch.setenv("SONGQUEUE_LOG_JSON", "false")
    get_settings.cache_clear()
    root = logging.getLogger()
    before = root.handlers[:]
    try:
        assert install_server_logging() is False
        assert root.handlers == before
    finally:
        get_settings.cache_clear()
