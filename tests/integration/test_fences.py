"""The fences of issue #13's last windows, each proved with real workers, Redis and the sandbox.

- A download (or finalize) message of a run that `songqueue retry` replaced writes nothing.
- A poll message redelivered after `retry()` published its successor does not start a
  second poll chain.
- MiniMax's synchronous result is written under the intent's token, retried until Redis
  takes it.
- A budget reservation left by a worker killed between admission and the intent is given
  back.
- A playlist run whose files cannot be stored ends FAILED with the reason, after a bound.
"""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis

from producer.core.models.job_record import JobState
from producer.core.store import keys, spend
from tests.support.waiting import wait_for
from workers.fault_points import hit_key

pytestmark = pytest.mark.integration


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def _uri_path(uri: str) -> Path:
    return Path(urlparse(uri).path)


def test_a_download_of_a_replaced_run_writes_nothing(make_stack, sandbox) -> None:
    # No worker on the download queue yet: run 1's downloads wait there while the stale
    # message of run 0 is delivered first (on a queue of its own, to order the two).
    s = make_stack(watchdog_grace="120")
    s.start_worker(queues="submit,poll,callback")
    queue = s.queue()
    prompt = f"replaced run {_tag()} sandbox:submit_400=1"  # run 0 is refused, run 1 goes through
    job = queue.submit({"prompt": prompt}).id
    first = queue.wait(job, timeout=60)
    assert first.state == JobState.FAILED and first.run == 0

    queue.retry(job)
    # Settled: its downloads sent and marked so (the last write of its poll).
    second = wait_for("run 1 to reach DOWNLOADING", lambda: (r := queue.status(job)).state == JobState.DOWNLOADING
                      and all(song.dispatched for song in r.songs) and r)
    assert second.run == 1 and second.songs and second.songs[0].audio is None
    task_id = second.upstream_task_id

    queue.celery.send_task("songqueue.download", args=[job, 0, "audio", 0], queue="stale")
    s.start_worker(queues="stale", concurrency=1)
    wait_for("the stale download to be dropped",
             lambda: f"job {job}: dropped a download (song 1 audio) of run 0: the job is on run 1" in s.worker_logs())

    after = queue.status(job)
    assert after.version == second.version  # nothing written...
    assert sandbox.stats()["download_requests_by_task"].get(task_id, 0) == 0  # ...nothing fetched...
    assert not (s.tmp / "objects" / "jobs" / job).exists()  # ...nothing stored

    s.start_worker(queues="download")  # run 1's own messages carry run 1: they go through
    done = queue.wait(job, timeout=60)
    assert done.state == JobState.SUCCEEDED and done.run == 1
    assert done.stored_assets() == done.expected_assets()


def test_per_asset_download_messages_of_the_older_shape_still_store_the_job(make_stack, sandbox) -> None:
    # Messages sent before one run per song (one per asset, the asset named) may still be
    # queued after an upgrade: each fetches its asset alone, under its own bound, and the
    # run that stores the last one finalizes the job. The new shape's messages wait on the
    # download queue, which no worker reads here.
    s = make_stack(watchdog_grace="120")
    s.start_worker(queues="submit,poll,callback")
    queue = s.queue()
    job = queue.submit({"prompt": f"older shape {_tag()}"}).id
    record = wait_for("DOWNLOADING with its downloads sent", lambda: (r := queue.status(job)).state
                      == JobState.DOWNLOADING and all(song.dispatched for song in r.songs) and r)
    sent = [(index, asset) for index, song in enumerate(record.songs) for asset in song.assets()]
    assert len(sent) == 4  # 2 songs, MP3 and cover each
    for index, asset in sent:
        queue.celery.send_task("songqueue.download", args=[job, index, asset, record.run], queue="older")
    s.start_worker(queues="older", concurrency=1)

    done = queue.wait(job, timeout=60)
    assert done.state == JobState.SUCCEEDED and done.manifest is not None
    assert done.stored_assets() == done.expected_assets()
    assert {key: n for key, n in done.attempts.items() if key.startswith("download:")} == {
        f"download:{index + 1}:{asset}": 1 for index, asset in sent}
    assert "Task songqueue.finalize[" not in s.worker_logs()  # the last asset's run finalized


def _poll_messages(broker: redis.Redis, job_id: str) -> int:
    """Poll messages of `job_id` held by the broker: queued (every priority list of the
    poll queue) or delivered and not yet acked."""
    bodies = [raw for name in broker.scan_iter(match="poll*") if broker.type(name) == b"list"
              for raw in broker.lrange(name, 0, -1)]
    bodies += [json.dumps(json.loads(raw)[0]).encode() for raw in broker.hvals("unacked")]
    found = 0
    for raw in bodies:
        message = json.loads(raw)
        headers = message.get("headers", {})
        if headers.get("task") == "songqueue.poll" and f"job={job_id}" in headers.get("argsrepr", ""):
            found += 1
    return found


def test_a_poll_redelivered_after_its_retry_leaves_one_chain(make_stack, sandbox) -> None:
    s = make_stack(fault_point="poll.after_retry:kill", watchdog_grace="120")
    worker = s.start_worker(concurrency=2)
    queue = s.queue()
    client = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])
    job = queue.submit({"prompt": f"one chain {_tag()} sandbox:never_finish"}).id

    # The first link published its successor and was killed before its ack...
    wait_for("the crash point", lambda: client.exists(hit_key(s.env["SONGQUEUE_KEY_PREFIX"], "poll.after_retry")))
    # ...so it was delivered again, and dropped itself.
    wait_for("the redelivered poll to drop itself",
             lambda: f"job {job}: dropped a duplicate poll (link 'first')" in s.worker_logs())
    task_id = queue.status(job).upstream_task_id
    seen = sandbox.stats()["fetches_by_task"][task_id]
    wait_for("the chain to poll on", lambda: sandbox.stats()["fetches_by_task"][task_id] >= seen + 3)

    # A warm shutdown lets the running link publish its successor and puts every pending
    # countdown back on the queue: one chain is one message.
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    assert _poll_messages(client, job) == 1
    assert queue.status(job).state == JobState.GENERATING


def test_a_minimax_answer_is_recorded_through_a_redis_error(make_stack, sandbox) -> None:
    s = make_stack(fault_point="submit.after_call:redis_error", minimax_price_per_call="0.5")
    s.start_worker()
    queue = s.queue()
    client = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])
    tag = _tag()
    lyrics = f"[Verse]\nkept {tag} sandbox:duration=3"

    job = queue.submit({"model": "music-2.6", "prompt": "city pop", "lyrics": lyrics}, provider="minimax").id
    record = queue.wait(job, timeout=90)

    # The fault landed: at the point, after the paid answer was logged and before its write.
    assert client.get(hit_key(s.env["SONGQUEUE_KEY_PREFIX"], "submit.after_call")).split(b"|")[0] == b"redis_error"
    logs = s.worker_logs()
    assert f"job {job}: the upstream answered with the 1 paid song(s)" in logs
    assert f"job {job}: could not record the 1 paid song(s)" in logs and "injected at submit.after_call" in logs
    # The write was retried and landed: one paid generation, recorded and charged once.
    assert record.state == JobState.SUCCEEDED, record.error
    assert sum(n for text, n in sandbox.stats()["generations_by_lyrics"].items() if tag in text) == 1
    assert record.cost == 0.5 and record.attempts["submit"] == 1 and len(record.songs) == 1


def test_a_reservation_left_by_a_worker_killed_before_the_intent_is_given_back(make_stack, sandbox) -> None:
    s = make_stack(fault_point="submit.after_admit:kill", udio_price_per_call="1", udio_daily_budget="10",
                   udio_max_in_flight="1", watchdog_interval="1")
    s.start_worker()
    queue = s.queue()
    client = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])
    prefix = s.env["SONGQUEUE_KEY_PREFIX"]
    prompt = f"reserved {_tag()}"

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=90)

    # The fault landed: a submit was killed holding a reservation and a place in flight; its
    # message came back, reserved again and submitted once.
    assert client.get(hit_key(prefix, "submit.after_admit")).split(b"|")[0] == b"kill"
    assert record.state == JobState.SUCCEEDED and record.cost == 1.0
    assert sandbox.stats()["submits_by_prompt"][prompt] == 1
    # The dead run's reservation is given back by a watchdog round: the day's spend is what
    # was billed, nothing is pending, no place is held.
    wait_for("the stranded reservation to be given back", lambda: client.hlen(keys.reservations(prefix)) == 0)
    assert spend.spent(client, prefix, "udio") == 1.0
    assert client.zcard(keys.in_flight(prefix, "udio")) == 0
    assert "gave back a budget reservation its submit left before the intent" in s.worker_logs()


@pytest.mark.parametrize("max_transient_errors", ["0", "8"])
def test_playlist_files_are_retried_then_the_run_fails_once_the_bound_is_spent(make_stack, tmp_path,
                                                                             max_transient_errors: str) -> None:
    definition = tmp_path / "outputs.toml"
    definition.write_text(f'album = "Bounded"\nprompts = ["bounded {_tag()} sandbox:gen_time=0.5"]\ncount = 1\n')
    s = make_stack(playlist_check_interval="0.5", fault_point="playlist.before_put:storage_error",
                   max_transient_errors=max_transient_errors)
    s.start_worker()
    client = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])

    result = s.cli("playlist", "run", str(definition), "--wait", "--timeout", "90", "--json")

    view = json.loads(result.stdout)
    # The fault landed: the storage reported a full disk while the files were written.
    assert client.get(hit_key(s.env["SONGQUEUE_KEY_PREFIX"], "playlist.before_put")).split(b"|")[0] == b"storage_error"
    if max_transient_errors == "0":  # the bound is spent at the first fault: the run ends, with the reason
        assert result.returncode == 1 and view["state"] == "FAILED", view
        assert view["error"]["code"] == "storage_unavailable"
        assert "playlist files: gave up after 1 attempts" in view["error"]["message"]
        assert "injected at playlist.before_put" in view["error"]["message"] and view["m3u8"] is None
    else:  # retried: the next attempt stores them
        assert result.returncode == 0 and view["state"] == "SUCCEEDED", view
        assert _uri_path(view["m3u8"]).is_file() and _uri_path(view["json"]).is_file()


def test_playlist_files_attempts_that_died_count_toward_the_bound(make_stack, tmp_path) -> None:
    definition = tmp_path / "outputs.toml"
    definition.write_text(f'album = "Bounded"\nprompts = ["killed {_tag()} sandbox:gen_time=0.5"]\ncount = 1\n')
    # One attempt allowed in all; the first is killed at the point and its message redelivered.
    s = make_stack(playlist_check_interval="0.5", fault_point="playlist.before_put:kill",
                   max_deliveries="1", max_transient_errors="0")
    s.start_worker()
    client = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])

    result = s.cli("playlist", "run", str(definition), "--wait", "--timeout", "90", "--json")

    view = json.loads(result.stdout)
    assert client.get(hit_key(s.env["SONGQUEUE_KEY_PREFIX"], "playlist.before_put")).split(b"|")[0] == b"kill"
    assert result.returncode == 1 and view["state"] == "FAILED", view
    assert view["error"]["code"] == "playlist_output_exhausted"
    assert "1 attempts did not store them" in view["error"]["message"] and view["m3u8"] is None
