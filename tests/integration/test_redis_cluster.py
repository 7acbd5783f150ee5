"""The job store on a real Redis Cluster: three masters with a replica each.

The broker stays a plain private Redis (Celery has no Redis Cluster transport); the job
store is `redis-cluster://` with a hash-tagged key prefix, so every key of it is on one
slot, one master's. Real Celery workers, the sandbox gateway.

(a) The spine: a Udio, a Suno and a MiniMax job end SUCCEEDED, and the keys they left all
    hash to one slot.
(b) A master kill: the master serving that slot is SIGKILLed while jobs are generating
    upstream; the cluster promotes its replica (cluster-node-timeout 2 s) and every job still
    ends SUCCEEDED, none submitted twice.
(c) A paused master (SIGSTOP, then SIGCONT): replaced, back as a replica, and paid submits
    that need a replica (SONGQUEUE_REDIS_MIN_REPLICAS=1) go through after it.
A partition runs in the hosts harness (tests/hosts/sharded.py, `make hosts`): it needs network namespaces.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid

import pytest
import redis
import stack

from producer import AsyncSongQueue, JobState
from producer.core import fleet
from producer.core.store.cluster_url import hash_tag
from sandbox import audio
from tests.support import redis_cluster

pytestmark = pytest.mark.integration

LIVE = {JobState.SUBMITTED, JobState.GENERATING}


@pytest.fixture
def cluster(tmp_path):
    started = redis_cluster.start(tmp_path / "cluster")
    yield started
    started.stop()


def _cluster_stack(make_stack, cluster, **overrides: str):
    prefix = "{t" + uuid.uuid4().hex[:8] + "}"
    return make_stack(REDIS_URL=cluster.url, KEY_PREFIX=prefix, **overrides), prefix


def test_udio_suno_and_minimax_jobs_succeed_with_every_key_on_one_slot(cluster, make_stack, sandbox):
    s, prefix = _cluster_stack(make_stack, cluster, WATCHDOG_INTERVAL="1")
    s.start_worker()
    queue = s.queue()
    reference = s.tmp / "voice.mp3"
    reference.write_bytes(audio.song_mp3(1.0, 2))
    voice = queue.upload_reference(reference, "voice")
    tag = uuid.uuid4().hex[:8]
    ids = [queue.submit({"prompt": f"cluster udio {tag} sandbox:gen_time=1"}).id,
           queue.submit({"gpt_description_prompt": f"cluster suno {tag} sandbox:gen_time=1"}, provider="suno").id,
           queue.submit({"lyrics": f"[Verse] cluster minimax {tag}", "refer_voice": voice},
                        provider="minimax").id]

    records = [queue.wait(job_id, timeout=60) for job_id in ids]
    assert [r.state for r in records] == [JobState.SUCCEEDED] * 3, [(r.id, r.state, r.error) for r in records]

    # Every key the job store wrote, on whichever node holds it, hashes to the prefix's slot.
    master, _ = cluster.owner(f"{prefix}:job:x")
    slot = int(master.client().execute_command("CLUSTER KEYSLOT", prefix))
    written = [k for n in cluster.nodes for k in n.client().scan_iter(match=f"{prefix}*", count=500)]
    assert len(written) >= 6, written
    assert {int(master.client().execute_command("CLUSTER KEYSLOT", k)) for k in written} == {slot}
    assert all(master.client().exists(f"{prefix}:job:{job_id}") for job_id in ids)
    assert hash_tag(prefix) == prefix.strip("{}")
    # The asyncio client reads through the cluster too; the worker's card is found by a SCAN
    # over every node (the metrics exporter and the doctor read the fleet so).
    async def read() -> str:
        reader = AsyncSongQueue(queue.settings)
        try:
            return (await reader.status(ids[0])).state.value
        finally:
            await reader.aclose()
    assert asyncio.run(read()) == "SUCCEEDED"
    assert [card.worker for card in fleet.read_all(queue.store.redis, prefix)], "no worker card found"
    # The doctor names the one slot and its master.
    stack.wait_until(lambda: queue.store.last_watchdog_round() is not None, 30, "a watchdog round on the cluster")
    done = s.cli("doctor", "--json")
    checks = {line["check"]: line for line in json.loads(done.stdout)["checks"]}
    assert checks["redis"]["ok"] and checks["clock"]["ok"] and checks["watchdog"]["ok"], checks
    assert f"every job-store key is on slot {slot}, master 127.0.0.1:{master.port}" in checks["redis"]["detail"]


def test_the_job_store_master_killed_under_jobs_in_flight_fails_over_and_every_job_ends_once(
        cluster, make_stack, sandbox):
    # What the docs ask of a cluster job store, as of Sentinel: the intent on a replica before the paid call.
    s, prefix = _cluster_stack(make_stack, cluster, REDIS_MIN_REPLICAS="1", WATCHDOG_INTERVAL="1",
                               WATCHDOG_GRACE="4", HTTP_TIMEOUT="5")
    s.start_worker()
    queue = s.queue()
    tag = uuid.uuid4().hex[:8]
    prompts = [f"cluster failover {tag} {i} sandbox:gen_time=6" for i in range(3)]
    ids = [queue.submit({"prompt": p}).id for p in prompts]

    def seen() -> list[tuple[JobState, float]] | None:
        try:
            return [(r.state, r.progress) for r in (queue.store.get(i) for i in ids)]
        except redis.RedisError:  # the slot's master is gone and its replica not yet promoted
            return None

    def states() -> list[JobState] | None:
        now = seen()
        return None if now is None else [state for state, _ in now]

    def writes() -> bool:
        try:
            return bool(queue.store.redis.set(f"{prefix}:probe", "1", px=60_000))
        except redis.RedisError:
            return False

    stack.wait_until(lambda: (now := states()) is not None and all(st in LIVE for st in now), 60,
                     "every job in flight")
    before = seen()
    master, replica = cluster.owner(f"{prefix}:job:x")
    killed_at = time.monotonic()
    exit_status = cluster.kill(master)
    # Figures for docs/operations.md (printed with -s): kill -> the replica is master, -> a
    # write through the cluster client lands, -> a job moves, -> every job has ended.
    stack.wait_until(lambda: replica.role() == "master", 30, "the replica promoted")
    promoted_s = time.monotonic() - killed_at
    stack.wait_until(writes, 30, "a write to the promoted replica")
    writes_s = time.monotonic() - killed_at
    stack.wait_until(lambda: (now := seen()) is not None and now != before, 60, "a job to move")
    moved_s = time.monotonic() - killed_at
    stack.wait_until(lambda: (now := states()) is not None and all(st.terminal for st in now), 90,
                     "every job to end")
    ended_s = time.monotonic() - killed_at

    # The fault landed: the master died of SIGKILL and its replica now serves the slot.
    assert exit_status == -9
    assert cluster.owner(f"{prefix}:job:x")[0].port == replica.port
    records = [queue.store.get(i) for i in ids]
    assert [r.state for r in records] == [JobState.SUCCEEDED] * 3, [(r.id, r.state, r.error) for r in records]
    submits = sandbox.stats()["submits_by_prompt"]
    assert [submits.get(p, 0) for p in prompts] == [1, 1, 1]
    print(f"\nfrom the kill: promoted {promoted_s:.1f} s, takes writes {writes_s:.1f} s, a job moves "
          f"{moved_s:.1f} s, all ended {ended_s:.1f} s; load average {os.getloadavg()}")


def test_a_paused_master_is_replaced_rejoins_as_a_replica_and_new_paid_submits_wait_for_it(
        cluster, make_stack, sandbox):
    # SIGSTOP: the master stops answering without dying (a hung host, a long GC-like stall),
    # as a partition looks to the rest of the cluster; unlike a partition it takes no writes
    # meanwhile. After the failover it is resumed and must come back as the new master's replica.
    s, prefix = _cluster_stack(make_stack, cluster, REDIS_MIN_REPLICAS="1", WATCHDOG_INTERVAL="1",
                               WATCHDOG_GRACE="4", HTTP_TIMEOUT="5")
    s.start_worker()
    queue = s.queue()
    tag = uuid.uuid4().hex[:8]
    prompts = [f"cluster pause {tag} {i} sandbox:gen_time=4" for i in range(2)]
    ids = [queue.submit({"prompt": p}).id for p in prompts]

    def states(job_ids: list[str]) -> list[JobState] | None:
        try:
            return [r.state for r in (queue.store.get(i) for i in job_ids)]
        except redis.RedisError:
            return None

    stack.wait_until(lambda: (now := states(ids)) is not None and all(st in LIVE for st in now), 60,
                     "every job in flight")
    master, replica = cluster.owner(f"{prefix}:job:x")
    master.proc.send_signal(signal.SIGSTOP)
    try:
        stack.wait_until(lambda: replica.role() == "master", 30, "the replica promoted")
    finally:
        master.proc.send_signal(signal.SIGCONT)
    stack.wait_until(lambda: master.role() == "slave", 30, "the old master back as a replica")
    # Which node serves the slot spreads by gossip: the node asked first may still name the old master.
    stack.wait_until(lambda: cluster.owner(f"{prefix}:job:x")[0].port == replica.port, 30,
                     "the cluster to name the promoted replica as the slot's master")

    # New paid submits: the promoted master has a replica again (the old master), so WAIT is met.
    later = [f"cluster pause {tag} after {i} sandbox:gen_time=1" for i in range(2)]
    ids += [queue.submit({"prompt": p}).id for p in later]
    stack.wait_until(lambda: (now := states(ids)) is not None and all(st.terminal for st in now), 90,
                     "every job to end")
    records = [queue.store.get(i) for i in ids]
    assert [r.state for r in records] == [JobState.SUCCEEDED] * 4, [(r.id, r.state, r.error) for r in records]
    submits = sandbox.stats()["submits_by_prompt"]
    assert [submits.get(p, 0) for p in prompts + later] == [1, 1, 1, 1]
