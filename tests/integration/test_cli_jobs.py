"""The job commands on a real Redis (no workers): what list, status, cancel show and refuse."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import redis
import stack

from producer.core.task_names import ALL_QUEUES

pytestmark = pytest.mark.integration


def test_list_status_timeline_and_cancel_explain_themselves(make_stack):
    s = make_stack()
    broker = redis.Redis.from_url(s.env["SONGQUEUE_BROKER_URL"])
    refused = s.cli("submit", "--prompt", "never", "--wait", "--timeout", "-1")
    assert refused.returncode == 2 and "--timeout" in refused.stderr
    assert all(broker.llen(q) == 0 for q in ALL_QUEUES)  # nothing was enqueued

    job = s.queue().submit({"prompt": "a calm   piano piece\nabout rain"}).id
    listed = s.cli("list", "--state", "queued")
    header, row = listed.stdout.splitlines()
    assert header.split() == ["JOB", "STATE", "PROG", "AGE", "PROVIDER/MODEL", "PROMPT"]
    assert row.startswith(job) and "udio/udio32-v1.5" in row and row.endswith("a calm piano piece about rain")

    view = json.loads(s.cli("status", job, "--json").stdout)
    assert {"created_at", "updated_at", "provider", "model", "cost"} <= set(view)
    assert (view["provider"], view["model"], view["cost"]) == ("udio", "udio32-v1.5", 0.0)

    first = s.cli("cancel", job, "--json")
    assert first.returncode == 0 and json.loads(first.stdout)["cancelled"] is True
    again = s.cli("cancel", job)
    assert again.returncode == 1 and "already ended CANCELLED" in again.stdout
    timeline = s.cli("status", job, "--timeline").stdout.splitlines()
    assert timeline[1].startswith("QUEUED") and "#" in timeline[1]
    assert timeline[2].startswith("CANCELLED") and timeline[2].endswith("|")

    missing = s.cli("cancel", "nosuchjob")
    assert missing.returncode == 2 and missing.stderr == "songqueue: no job nosuchjob\n" and missing.stdout == ""


def test_a_reader_that_leaves_gets_a_quiet_exit(make_stack):
    s = make_stack()
    queue = s.queue()
    for n in range(3):
        queue.submit({"prompt": f"pipe {n}"})
    proc = subprocess.Popen([sys.executable, "-m", "producer.cli.main", "list"], env=s.env, cwd=stack.ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141
    assert err == ""
