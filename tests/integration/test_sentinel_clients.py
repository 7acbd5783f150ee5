"""The producer side through Redis Sentinel: a real master, replica and three sentinels.

SongQueue writes a job through the sentinels, AsyncSongQueue reads it back the same way,
and `songqueue doctor` reaches the job store and the broker through them (its redis and
broker lines pass, with the URL's password masked). No worker: the
failover itself is tests/faults/test_sentinel_failover.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import pytest
import stack

from producer import AsyncSongQueue, Settings, SongQueue
from tests.support import sentinel_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = sentinel_cluster.start(tmp_path_factory.mktemp("sentinel"))
    yield started
    started.stop()


def test_jobs_written_and_read_through_the_sentinels(cluster):
    settings = Settings(broker_url=cluster.url, sentinel_master=cluster.name, key_prefix=f"t{uuid.uuid4().hex[:8]}")
    job = SongQueue(settings).submit({"prompt": "through the sentinels"})

    async def read() -> str:
        queue = AsyncSongQueue(settings)
        try:
            return (await queue.status(job.id)).state.value
        finally:
            await queue.aclose()

    assert asyncio.run(read()) == "QUEUED"
    # It went to the master the sentinels name, and replicated from there.
    key = f"{settings.key_prefix}:job:{job.id}"
    assert cluster.master.client().exists(key)
    stack.wait_until(lambda: cluster.replica.client().exists(key), 30, "the record on the replica")


def test_doctor_reaches_redis_and_the_broker_through_the_sentinels(cluster, tmp_path):
    # The master has no password; Redis 6 lets an AUTH through then, so only the masking shows.
    url = cluster.url.replace("sentinel://", "sentinel://:hunter2@", 1)
    env = stack.worker_env({"SONGQUEUE_BROKER_URL": cluster.url, "SONGQUEUE_SENTINEL_MASTER": cluster.name})
    done = subprocess.run([sys.executable, "-m", "producer.cli.main", "doctor", "--json"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    checks = {line["check"]: line for line in json.loads(done.stdout)["checks"]}
    assert checks["redis"]["ok"] and checks["broker"]["ok"], checks

    env["SONGQUEUE_BROKER_URL"] = url
    done = subprocess.run([sys.executable, "-m", "producer.cli.main", "doctor", "--json"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    checks = {line["check"]: line for line in json.loads(done.stdout)["checks"]}
    assert "sentinel://:****@127.0.0.1" in checks["redis"]["detail"], checks["redis"]
    assert "sentinel://:****@127.0.0.1" in checks["broker"]["detail"], checks["broker"]
    assert "hunter2" not in done.stdout + done.stderr


def test_without_a_master_name_the_cli_says_which_setting_is_missing(cluster, tmp_path):
    env = stack.worker_env({"SONGQUEUE_BROKER_URL": cluster.url})
    done = subprocess.run([sys.executable, "-m", "producer.cli.main", "list"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert done.stderr.startswith("songqueue: bad settings:\n  SONGQUEUE_SENTINEL_MASTER: required when "
                                  "SONGQUEUE_BROKER_URL or SONGQUEUE_REDIS_URL is a sentinel:// URL"), done.stderr
