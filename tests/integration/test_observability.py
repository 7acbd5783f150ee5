"""`songqueue metrics` (Prometheus) and JSON worker logs, during a real run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import pytest
import requests
import stack
from prometheus_client.parser import text_string_to_metric_families

from producer.core.models.job_record import JobState
from tests.support.ports import start_flower
from tests.support.prerequisites import require_promtool

pytestmark = pytest.mark.integration


def _samples(text: str) -> dict[str, list]:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def _value(samples: list, name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _start_metrics(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "producer.cli.main", "metrics", "--port", "0", "--address", "127.0.0.1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=stack.ROOT,
                            start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(http://\S+/metrics)", line)
    if not match:
        stack.stop(proc)
        raise RuntimeError(f"songqueue metrics did not start: {line!r}")
    return proc, match.group(1)


def test_metrics_and_json_logs_of_a_real_run(make_stack, tmp_path):
    s = make_stack(log_json="true", udio_price_per_call="0.5")
    metrics, url = _start_metrics(s.env)
    try:
        queue = s.queue()
        tag = uuid.uuid4().hex[:8]
        # Sent before any worker runs: it waits in the submit queue.
        early = queue.submit({"prompt": f"metrics early {tag}"}).id
        before = _samples(requests.get(url, timeout=10).text)
        assert _value(before["songqueue_queue_depth"], "songqueue_queue_depth", queue="submit") == 1
        assert _value(before["songqueue_jobs"], "songqueue_jobs", state="QUEUED") == 1

        s.start_worker(concurrency=2)
        flaky = queue.submit({"prompt": f"metrics flaky {tag} sandbox:fetch_500=1"}).id
        records = [queue.wait(j, timeout=60) for j in (early, flaky)]
        assert [r.state for r in records] == [JobState.SUCCEEDED] * 2
        text = requests.get(url, timeout=10).text
        after = _samples(text)
    finally:
        stack.stop(metrics)

    # The job-level families: counted by the job store as each job ends.
    assert _value(after["songqueue_jobs_finished"], "songqueue_jobs_finished_total", provider="udio",
                  state="SUCCEEDED", code="") == 2
    durations = after["songqueue_job_duration_seconds"]
    assert _value(durations, "songqueue_job_duration_seconds_count", provider="udio", state="SUCCEEDED") == 2
    assert _value(after["songqueue_spend"], "songqueue_spend_total", provider="udio") == 1.0
    assert [s.labels["version"] for s in after["songqueue_build_info"]] != []
    _check_with_promtool(text)
    _rules_and_dashboard_name_only_exported_metrics(set(after))

    assert _value(after["songqueue_jobs"], "songqueue_jobs", state="SUCCEEDED") == 2
    assert _value(after["songqueue_jobs"], "songqueue_jobs", state="QUEUED") == 0
    assert _value(after["songqueue_queue_depth"], "songqueue_queue_depth", queue="submit") == 0
    assert _value(after["songqueue_in_flight"], "songqueue_in_flight", provider="udio") == 0
    assert _value(after["songqueue_spend_today"], "songqueue_spend_today", provider="udio") == 1.0
    latency = after["songqueue_upstream_request_seconds"]
    assert _value(latency, "songqueue_upstream_request_seconds_count", provider="udio", call="submit") == 2
    assert _value(latency, "songqueue_upstream_request_seconds_bucket", provider="udio", call="submit", le="+Inf") == 2
    fetches = _value(latency, "songqueue_upstream_request_seconds_count", provider="udio", call="fetch")
    assert fetches >= 3  # one 500, then at least one answer per job
    errors = after["songqueue_upstream_errors"]
    assert _value(errors, "songqueue_upstream_errors_total", provider="udio", call="fetch",
                  code="upstream_unavailable") == 1
    polls = after["songqueue_polls_per_job"]
    assert _value(polls, "songqueue_polls_per_job_count", provider="udio") == 2
    assert _value(polls, "songqueue_polls_per_job_sum", provider="udio") == fetches
    stored = sum(song.audio.size + song.cover.size for r in records for song in r.songs)
    assert _value(after["songqueue_downloaded_bytes"], "songqueue_downloaded_bytes_total", provider="udio") == stored

    log = s.worker_logs()
    # Celery prints its start-up banner as plain text; every log line after it is one JSON object.
    lines = [line for line in log[log.index("\n{"):].splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    assert {"ts", "level", "logger", "message", "job_id", "upstream_task_id"} <= set(parsed[0])
    flaky_record = records[1]
    mine = [p for p in parsed if p["job_id"] == flaky]
    assert any(p["upstream_task_id"] == flaky_record.upstream_task_id and "submitted as upstream task" in p["message"]
               for p in mine)
    # Celery's own lines carry the job id too, from inside its tasks or from their argsrepr.
    assert any(p["task"] == "songqueue.poll" and "Retry in" in p["message"] for p in mine), mine
    assert any(re.search(r"Task songqueue\.download\[\S+\] received", p["message"]) for p in mine), mine
    assert all(p["job_id"] in (early, flaky, None) for p in parsed)


def _check_with_promtool(text: str) -> None:
    promtool = require_promtool()
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _rules_and_dashboard_name_only_exported_metrics(families: set[str]) -> None:
    """Every songqueue_* series the alert rules and the dashboard query is one the exporter serves."""
    names = {f"{family}{suffix}" for family in families for suffix in ("", "_total", "_bucket", "_sum", "_count", "_info")}
    for path in (stack.ROOT / "deploy" / "prometheus-rules.yml", stack.ROOT / "deploy" / "grafana-dashboard.json"):
        used = set(re.findall(r"songqueue_[a-z_]+", path.read_text()))
        assert used <= names, (path.name, used - names)


def test_flower_shows_the_task_that_failed_a_job_as_failed(make_stack):
    s = make_stack()
    s.start_worker(concurrency=1)
    flower, url = start_flower({**s.env, "FLOWER_UNAUTHENTICATED_API": "true"}, s.tmp / "flower.log")
    try:
        job = s.queue().submit({"prompt": f"doomed {uuid.uuid4().hex[:6]} sandbox:failure"}).id
        assert s.queue().wait(job, timeout=60).state == JobState.FAILED

        def failed_task() -> dict | None:
            tasks = requests.get(f"{url}/api/tasks", timeout=5).json()
            return next((t for t in tasks.values() if job in str(t.get("args")) and t.get("state") == "FAILURE"), None)

        task = stack.wait_until(failed_task, 30, "Flower to show the failing task")
    finally:
        stack.stop(flower)
    assert isinstance(task, dict) and task["name"] == "songqueue.poll"
    assert "JobFailed" in str(task.get("exception")) and "upstream_failure" in str(task.get("exception"))
