"""Suno end to end through the CLI: a real worker, the sandbox speaking Suno over HTTP."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration


def _text(words: str) -> str:
    return f"{words} {uuid.uuid4().hex[:8]}"


def _suno_submits(sandbox: Any, text: str) -> list[dict[str, Any]]:
    log = requests.get(f"{sandbox.url}/_sandbox/requests", params={"limit": 2000}, timeout=5).json()["requests"]
    return [json.loads(e["body"]) for e in log
            if e["method"] == "POST" and e["path"].startswith("/suno/submit/") and text in e["body"]]


@pytest.mark.parametrize("shape", ["", "sandbox:clip_array"])
def test_suno_job_through_the_cli(make_stack, sandbox, shape: str) -> None:
    s = make_stack()
    s.start_worker()
    description = _text(f"a calm lo-fi piano piece sandbox:stagger sandbox:gen_time=3 {shape}")
    streams_before = sandbox.stats().get("suno_stream_requests", 0)

    result = s.cli("submit", "--provider", "suno", "--gpt-description-prompt", description, "--model", "chirp-v4",
                   "--wait", "--timeout", "90", "--json")

    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["state"] == "SUCCEEDED", job
    assert _suno_submits(sandbox, description) == [
        {"gpt_description_prompt": description, "mv": "chirp-v4", "make_instrumental": False}]
    manifest = json.loads(Path(s.tmp, "objects", "jobs", job["id"], "manifest.json").read_text())
    assert manifest["provider"] == "suno" and manifest["model"] == "chirp-v4"
    assert [song["tags"] for song in manifest["songs"]] == [
        ["sandbox", "electronic", "mandopop", "2010s"], ["sandbox", "ambient", "female vocalist", "ballad"]]
    for song in manifest["songs"]:
        assert song["audio"]["size"] > 0 and song["cover"]["content_type"] == "image/png"
    # The streaming clips' temporary URLs were seen (the job polled through `streaming`) but never fetched.
    assert sandbox.stats().get("suno_stream_requests", 0) == streams_before


def test_suno_extend_job_sends_clip_task_and_continue_at(make_stack, sandbox) -> None:
    s = make_stack()
    s.start_worker()
    queue = s.queue()
    first = queue.wait(queue.submit({"gpt_description_prompt": _text("the original sandbox:gen_time=1")},
                                    provider="suno").id, timeout=60)
    assert first.state.value == "SUCCEEDED"
    lyrics = _text("[Verse] and on it goes")

    result = s.cli("submit", "--provider", "suno", "--lyrics", lyrics, "--tags", "punk", "--title", "On",
                   "--extend-job", first.id, "--song", "2", "--continue-at", "0")

    assert result.returncode == 0, result.stderr
    [sent] = _wait_for_submit(sandbox, lyrics)
    assert sent["continue_clip_id"] == first.songs[1].upstream_id
    assert sent["task_id"] == first.upstream_task_id
    assert sent["continue_at"] == 0  # kept, not dropped
    assert (sent["prompt"], sent["tags"], sent["title"]) == (lyrics, "punk", "On")


def _wait_for_submit(sandbox: Any, text: str) -> list[dict[str, Any]]:
    import time
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = _suno_submits(sandbox, text)
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no suno submit for {text!r}")


def test_suno_bad_input_names_field_and_rule(make_stack, sandbox) -> None:
    s = make_stack()
    submits_before = sandbox.stats()["submit_requests"]
    result = s.cli("submit", "--provider", "suno", "--gpt-description-prompt", "x", "--title", "T")
    assert result.returncode == 2
    assert "title" in result.stderr and "custom mode only" in result.stderr
    assert s.cli("submit", "--provider", "suno", "--prompt", "la", "--mode", "precede").returncode == 2
    assert sandbox.stats()["submit_requests"] == submits_before
    assert s.queue().list() == []


def test_due_jobs_are_fetched_together_and_an_absence_is_not_a_failure(make_stack, sandbox) -> None:
    s = make_stack(suno_poll_min_interval="1", suno_max_absences="3")
    tag = uuid.uuid4().hex[:8]
    queue = s.queue()
    # Submitted before any worker runs, so their polls come due together.
    ids = [queue.submit({"gpt_description_prompt": f"batch {tag} {i} sandbox:gen_time=3"
                         + (" sandbox:batch_absent=2" if i == 0 else "")}, provider="suno").id for i in range(6)]
    batches_before = sandbox.stats().get("batch_fetch_requests", 0)
    s.start_worker(concurrency=2)

    records = [queue.wait(i, timeout=90) for i in ids]

    assert [r.state.value for r in records] == ["SUCCEEDED"] * 6, [r.error for r in records]
    assert "unknown" not in records[0].attempts  # left out twice within the grace window: not counted
    stats = sandbox.stats()
    assert stats["faults"].get("batch_absent") == 2  # the fault landed
    tasks = {t["prompt"]: tid for tid, t in stats["tasks"].items() if tag in t["prompt"]}
    task_fetches = sum(stats["fetches_by_task"].get(tid, 0) for tid in tasks.values())
    batch_calls = stats.get("batch_fetch_requests", 0) - batches_before
    assert batch_calls > 0
    # Every fetch of these tasks went out in batch calls, several tasks to a call.
    assert task_fetches > batch_calls


def test_one_batch_call_carries_every_due_job_and_each_ends_on_its_own(make_stack, sandbox) -> None:
    n = 12
    # A window wider than the generations: once every job has joined, each drain takes all of them.
    s = make_stack(suno_poll_initial_delay="0.5", suno_poll_min_interval="0.5", suno_poll_batch_window="30")
    tag = uuid.uuid4().hex[:8]
    queue = s.queue()
    ids = [queue.submit({"gpt_description_prompt": f"together {tag} {i} sandbox:gen_time=4"
                         + (" sandbox:failure" if i == 0 else "")}, provider="suno").id for i in range(n)]
    s.start_worker(concurrency=2)

    records = [queue.wait(i, timeout=120) for i in ids]

    assert [r.state.value for r in records] == ["FAILED"] + ["SUCCEEDED"] * (n - 1), [r.error for r in records]
    assert records[0].error is not None and records[0].error.code == "upstream_failure"
    stats = sandbox.stats()
    ours = {r.upstream_task_id for r in records}
    calls = [set(c) for c in stats["batch_ids"] if ours & set(c)]
    assert any(c == ours for c in calls), calls  # one call carried all n tasks, and nothing else
    # Each task was fetched in batch calls only, several times, in far fewer calls than fetches.
    fetches = sum(stats["fetches_by_task"][t] for t in ours)
    assert fetches >= 2 * n and len(calls) * 4 <= fetches, (len(calls), fetches)


def test_a_failed_batch_call_makes_every_job_in_it_due_again(make_stack, sandbox) -> None:
    s = make_stack(suno_poll_batch_window="30")
    tag = uuid.uuid4().hex[:8]
    queue = s.queue()
    # Two 500s for the batches naming job 0: a relay's error answers for the whole call.
    ids = [queue.submit({"gpt_description_prompt": f"flaky {tag} {i} sandbox:gen_time=3"
                         + (" sandbox:fetch_500=2" if i == 0 else "")}, provider="suno").id for i in range(4)]
    s.start_worker()

    records = [queue.wait(i, timeout=120) for i in ids]

    assert [r.state.value for r in records] == ["SUCCEEDED"] * 4, [r.error for r in records]
    stats = sandbox.stats()
    assert stats["faults"].get("fetch_500", 0) >= 2  # the fault landed
    faulty = records[0].upstream_task_id
    failed_calls = [c for c in stats["batch_ids"] if faulty in c][:2]
    others = {r.upstream_task_id for r in records[1:]}
    # The jobs that shared a failed call with job 0 were asked for again afterwards, and ended.
    for task in others & set().union(*failed_calls):
        assert stats["fetches_by_task"][task] >= 2


def test_a_drainer_killed_mid_batch_loses_no_job(make_stack, sandbox) -> None:
    import redis

    from workers.fault_points import hit_key

    s = make_stack(fault_point="poll.before_fetch:kill", http_timeout="3", watchdog_grace="4",
                   watchdog_interval="1", suno_poll_batch_window="30")
    tag = uuid.uuid4().hex[:8]
    queue = s.queue()
    ids = [queue.submit({"gpt_description_prompt": f"killed {tag} {i} sandbox:gen_time=3"}, provider="suno").id
           for i in range(4)]
    s.start_worker()

    records = [queue.wait(i, timeout=150) for i in ids]

    store = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])
    assert store.exists(hit_key(s.env["SONGQUEUE_KEY_PREFIX"], "poll.before_fetch"))  # the kill landed
    assert [r.state.value for r in records] == ["SUCCEEDED"] * 4, [r.error for r in records]


def test_a_task_always_left_out_fails_past_the_bound(make_stack, sandbox) -> None:
    s = make_stack(suno_poll_min_interval="0.5", suno_max_absences="2", unknown_task_grace="0")
    s.start_worker()
    queue = s.queue()
    job = queue.submit({"gpt_description_prompt": _text("lost sandbox:gen_time=1 sandbox:batch_absent=50")},
                       provider="suno")
    record = queue.wait(job.id, timeout=60)
    assert record.state.value == "FAILED"
    assert record.error is not None and record.error.code == "upstream_task_missing"
    assert "left out of a batch answer to 3 polls in a row" in record.error.message


def test_a_relay_batch_cap_is_learned_by_halving_not_by_fetching_each_task(make_stack, sandbox) -> None:
    """A relay that caps the ids of one fetch answers a bigger batch 400; the drainer halves
    the batch until the relay takes it and keeps that size, instead of one call per task."""
    n = 10
    s = make_stack(suno_poll_initial_delay="0.5", suno_poll_min_interval="0.5", suno_poll_batch_window="30",
                   suno_poll_batch_size="16")
    tag = uuid.uuid4().hex[:8]
    queue = s.queue()
    sandbox.configure(batch_id_cap=4)
    try:
        ids = [queue.submit({"gpt_description_prompt": f"capped {tag} {i} sandbox:gen_time=4"}, provider="suno").id
               for i in range(n)]
        s.start_worker(concurrency=2)
        records = [queue.wait(i, timeout=120) for i in ids]
        stats = sandbox.stats()
    finally:
        sandbox.configure(batch_id_cap=0)

    assert [r.state.value for r in records] == ["SUCCEEDED"] * n, [r.error for r in records]
    assert stats["faults"].get("batch_id_cap", 0) >= 1  # the fault landed: a batch over the cap was refused
    ours = {r.upstream_task_id for r in records}
    accepted = [c for c in stats["batch_ids"] if ours & set(c)]
    assert accepted and max(len(c) for c in accepted) <= 4
    # No task was asked alone (GET /suno/fetch/{id}): each fetch of a task was one of the accepted batches.
    for task in ours:
        assert stats["fetches_by_task"][task] == sum(task in c for c in accepted), task
    learned = queue.store.redis.get(f"{queue.store.prefix}:batchcap:suno")
    assert learned is not None and int(learned) <= 4
