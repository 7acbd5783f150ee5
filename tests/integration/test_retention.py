"""Retention: an ended job leaves Redis SONGQUEUE_JOB_RETENTION seconds after it ended, and
`status`, `fetch` and `list --archived` still answer, from its manifest.json in storage."""

from __future__ import annotations

import json
import uuid

import pytest

from producer.client.wait_loop import poll_until
from producer.core.models.job_record import JobState
from producer.core.store import keys

pytestmark = pytest.mark.integration


def test_an_expired_job_is_told_by_its_manifest(make_stack, tmp_path):
    s = make_stack(job_retention="3", retention_sweep_interval="1")
    s.start_worker(concurrency=2)
    queue = s.queue()
    tag = uuid.uuid4().hex[:8]
    ok = queue.submit({"prompt": f"kept {tag}"}, idempotency_key=f"ok-{tag}").id
    bad = queue.submit({"prompt": f"lost {tag} sandbox:failure"}).id
    succeeded, failed = queue.wait(ok, timeout=60), queue.wait(bad, timeout=60)
    assert (succeeded.state, failed.state) == (JobState.SUCCEEDED, JobState.FAILED)
    # The archive task notes the failed job's manifest on the record before it expires.
    poll_until(lambda: queue.store.get(bad), lambda r: r is None or r.manifest is not None, timeout=30)

    # Both records, and the idempotency key, leave Redis on their own.
    poll_until(lambda: (queue.store.get(ok), queue.store.get(bad)), lambda rs: rs == (None, None), timeout=30)
    assert queue.store.redis.get(keys.idempotency(queue.store.prefix, f"ok-{tag}")) is None

    back = queue.status(ok)
    assert back.state == JobState.SUCCEEDED and back.upstream_task_id == succeeded.upstream_task_id
    assert [song.audio for song in back.songs] == [song.audio for song in succeeded.songs]
    gone = queue.status(bad)
    assert gone.state == JobState.FAILED and gone.error == failed.error

    shown = s.cli("status", ok, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "SUCCEEDED"
    fetched = s.cli("fetch", ok, "--to", str(tmp_path / "out"))
    assert fetched.returncode == 0, fetched.stderr
    assert len(fetched.stdout.split()) >= 4

    # `list` shows live records only; `list --archived` reaches the rest.
    live = s.cli("list").stdout
    assert ok not in live and bad not in live
    archived = s.cli("list", "--archived").stdout
    assert ok in archived and bad in archived and "upstream_failure" in archived
