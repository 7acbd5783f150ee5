"""The rules that hold whatever the relay does (docs/faults.md), end to end: real workers,
Redis and the sandbox, each manner a sandbox directive. Every test first proves its fault
landed through the sandbox's own counts (or, for redirects, through a local server on
127.0.0.2 that counts what reached it), then what became of the job.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from producer.core.models.job_record import JobRecord, JobState
from tests.support.http_fixture import LocalServer

pytestmark = pytest.mark.integration

TARGET_BODY = b"TARGET-SECRET-PAGE"


def _tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def target() -> Iterator[LocalServer]:
    """What a hostile redirect points at: a private address nobody configured, counting its requests."""
    with LocalServer(host="127.0.0.2") as local:
        local.route("/steal", status=500, body=TARGET_BODY)
        yield local


def _task_of(stats: dict, prompt_part: str) -> str:
    return next(tid for tid, t in stats["tasks"].items() if prompt_part in t["prompt"])


# --- a complete answer is never thrown away ----------------------------------------------------


def test_a_trickling_submit_answer_complete_before_the_deadline_is_kept(make_stack, sandbox) -> None:
    """The answer's body takes ~3.5 s, past twice the 1 s read timeout (the old clock) but
    within the call's deadline: the task id is used, logged, and polled to the end."""
    s = make_stack(http_timeout="1")
    s.start_worker()
    queue = s.queue()
    before = sandbox.stats()
    prompt = f"trickle {_tag()} sandbox:submit_trickle=60"

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=90)

    stats = sandbox.stats()
    assert stats.get("trickled", 0) > before.get("trickled", 0)  # the fault landed...
    assert stats.get("trickle_completed", 0) > before.get("trickle_completed", 0)  # ...and was sent whole
    assert stats["submits_by_prompt"][prompt] == 1
    assert record.state.value == "SUCCEEDED", record.error
    assert record.upstream_task_id == _task_of(stats, prompt)
    assert f"answered the submit with task {record.upstream_task_id}" in s.worker_logs()


def test_a_submit_answer_trickling_past_the_deadline_is_cut_at_the_deadline(make_stack, sandbox) -> None:
    """One byte every 3 s (~3 minutes in all) never trips the 4 s read timeout: the call's
    deadline (14 s) closes the connection long before the body is out, and the job ends
    uncertain after one submit, its worker free again."""
    s = make_stack(http_timeout="4")
    s.start_worker()
    queue = s.queue()
    before = sandbox.stats()
    prompt = f"endless {_tag()} sandbox:submit_trickle=3000"

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=60)

    stats = sandbox.stats()
    assert stats.get("trickled", 0) > before.get("trickled", 0)  # the fault landed
    assert stats.get("trickle_completed", 0) == before.get("trickle_completed", 0)  # never sent whole
    assert stats["submits_by_prompt"][prompt] == 1  # and not sent again
    assert record.state.value == "FAILED" and record.error.code == "submit_uncertain"


# --- no redirect is followed --------------------------------------------------------------------


def test_a_307_on_the_submit_is_uncertain_and_the_paid_post_goes_nowhere(make_stack, sandbox, target) -> None:
    s = make_stack()
    s.start_worker()
    queue = s.queue()
    prompt = f"redirected submit {_tag()} sandbox:submit_redirect={target.url('/steal')}"

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=60)

    stats = sandbox.stats()
    assert stats["faults_by_task"][_task_of(stats, prompt)].get("submit_redirect") == 1  # the fault landed
    assert stats["submits_by_prompt"][prompt] == 1
    assert target.requests == []  # the paid POST was not re-sent to the redirect's target
    assert record.state.value == "FAILED" and record.error.code == "submit_uncertain"
    assert "TARGET-SECRET" not in record.error.message and "127.0.0.2" not in record.error.message


@pytest.mark.parametrize("provider", ["udio", "suno"])
def test_a_redirected_fetch_reaches_no_one_and_quotes_nothing(make_stack, sandbox, target, provider: str) -> None:
    s = make_stack(max_transient_errors="2", suno_poll_min_interval="0.5")
    s.start_worker()
    queue = s.queue()
    text = f"redirected fetch {_tag()} sandbox:gen_time=1 sandbox:fetch_redirect={target.url('/steal')}"
    request = {"prompt": text} if provider == "udio" else {"gpt_description_prompt": text}

    record = queue.wait(queue.submit(request, provider=provider).id, timeout=90)

    stats = sandbox.stats()
    task = _task_of(stats, text)
    assert stats["faults_by_task"][task].get("fetch_redirect", 0) >= 1  # the fault landed
    assert target.requests == []
    assert record.state.value == "FAILED" and record.error.code == "upstream_redirected", record.error
    assert "TARGET-SECRET" not in record.error.message


def test_a_redirected_reference_upload_reaches_no_one(make_stack, sandbox, target, tmp_path) -> None:
    from producer.client.minimax_upload import UploadError, upload_reference

    s = make_stack()
    song = tmp_path / "ref.mp3"
    song.write_bytes(b"ID3" + b"\0" * 1000)
    before = sandbox.stats().get("redirected", 0)
    sandbox.configure(upload_redirect=target.url("/steal"))
    try:
        with pytest.raises(UploadError) as caught:
            upload_reference(s.queue().settings, song, "instrumental")
    finally:
        sandbox.configure(upload_redirect="")
    assert sandbox.stats().get("redirected", 0) == before + 1  # the fault landed
    assert target.requests == []
    assert "redirect" in str(caught.value) and "TARGET-SECRET" not in str(caught.value)


def test_a_download_redirect_to_a_private_address_is_refused(make_stack, sandbox, target) -> None:
    """Downloads follow redirects hop by hop, each through the URL guard: a hop to a private
    address nobody allowed is refused before a request goes there."""
    s = make_stack(allow_private_networks="false", download_allowed_hosts="127.0.0.1", max_transient_errors="1")
    s.start_worker()
    queue = s.queue()
    prompt = f"redirected download {_tag()} sandbox:gen_time=1 sandbox:dl_redirect={target.url('/steal')}"

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=90)

    stats = sandbox.stats()
    assert stats["faults_by_task"][_task_of(stats, prompt)].get("dl_redirect", 0) >= 1  # the fault landed
    assert target.requests == []
    assert record.state.value == "FAILED", record.error
    assert record.error.code in ("download_host_not_allowed", "download_private_address"), record.error


# --- a task the relay does not know (yet, or any more) ------------------------------------------


@pytest.mark.parametrize("provider", ["udio", "suno"])
def test_a_task_unknown_for_a_while_after_the_submit_is_waited_for(make_stack, sandbox, provider: str) -> None:
    s = make_stack(unknown_task_grace="6", unknown_task_polls="1", suno_max_absences="1",
                   suno_poll_min_interval="0.5")
    s.start_worker()
    queue = s.queue()
    text = f"written late {_tag()} sandbox:gen_time=2 sandbox:unknown_for=4"
    request = {"prompt": text} if provider == "udio" else {"gpt_description_prompt": text}

    record = queue.wait(queue.submit(request, provider=provider).id, timeout=90)

    stats = sandbox.stats()
    assert stats["faults_by_task"][_task_of(stats, text)].get("unknown_for", 0) >= 2  # the fault landed, repeatedly
    assert record.state.value == "SUCCEEDED", record.error


@pytest.mark.parametrize("provider", ["udio", "suno"])
def test_a_task_forgotten_for_good_ends_saying_what_was_seen(make_stack, sandbox, provider: str) -> None:
    s = make_stack(unknown_task_grace="2", unknown_task_polls="2", suno_max_absences="2",
                   suno_poll_min_interval="0.5")
    s.start_worker()
    queue = s.queue()
    text = f"forgotten {_tag()} sandbox:gen_time=60 sandbox:expire=1"
    request = {"prompt": text} if provider == "udio" else {"gpt_description_prompt": text}

    record = queue.wait(queue.submit(request, provider=provider).id, timeout=90)

    stats = sandbox.stats()
    assert stats["faults_by_task"][_task_of(stats, text)].get("expire", 0) >= 3  # the fault landed
    assert record.state.value == "FAILED" and record.error.code == "upstream_task_missing", record.error
    assert "3 polls in a row" in record.error.message and "after the submit it accepted" in record.error.message


def test_scattered_suno_absences_never_add_up(make_stack, sandbox) -> None:
    """Left out of every 2nd batch answer: many absences over the job's life, never two in a
    row; with a bound of 1 in a row the job still succeeds."""
    s = make_stack(suno_poll_min_interval="0.5", suno_poll_batch_window="0", suno_max_absences="1",
                   unknown_task_grace="0")
    s.start_worker()
    queue = s.queue()
    text = f"flaky relay {_tag()} sandbox:gen_time=5 sandbox:batch_absent_every=2"

    record = queue.wait(queue.submit({"gpt_description_prompt": text}, provider="suno").id, timeout=90)

    stats = sandbox.stats()
    assert stats["faults_by_task"][_task_of(stats, text)].get("batch_absent_every", 0) >= 2  # landed, scattered
    assert record.state.value == "SUCCEEDED", record.error


# --- a slow but moving download is never resent ---------------------------------------------------


def test_a_slow_download_keeps_its_job_alive(make_stack, sandbox) -> None:
    """A 1 MiB song at 24 KiB/s takes ~40 s, one chunk: with the heartbeat between chunks the
    watchdog (grace 8 s) resent it every round; by the clock it is one run per asset."""
    s = make_stack(watchdog_interval="1", watchdog_grace="8")
    s.start_worker()
    queue = s.queue()
    prompt = f"slow cdn {_tag()} sandbox:gen_time=1 sandbox:size_mb=1 sandbox:dl_slow=24"

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=150)

    stats = sandbox.stats()
    task = _task_of(stats, prompt)
    assert stats["faults_by_task"][task].get("dl_slow", 0) >= 1  # the fault landed
    assert record.state.value == "SUCCEEDED", record.error
    # One request per file (2 songs, 2 covers): nothing was resent while it still arrived.
    assert stats["download_requests_by_task"][task] == 4


# --- the watchdog has a branch for every (state, condition) -------------------------------------


def test_submitting_with_an_older_runs_task_id_is_polled_to_the_end(make_stack, sandbox) -> None:
    """An older run's paid task id on a newer run's SUBMITTING record, and no run moving it on:
    the watchdog adopts the task and polls it, instead of seeing the job overdue forever."""
    s = make_stack(watchdog_interval="1", watchdog_grace="1")
    queue = s.queue()
    answer = requests.post(f"{sandbox.url}/udio/generate-proxy", json={"gen_params": {"prompt": f"old run {_tag()}"}},
                           headers={"Authorization": f"Bearer {sandbox.api_key}"}, timeout=10)
    task_id = answer.json()["data"]
    job = queue.submit({"prompt": f"newer run {_tag()}"})
    store = queue.store

    def stranded(r: JobRecord) -> None:
        r.upstream_task_id = task_id
        r.submit_intent_at = time.time()
        r.token += 1  # the submit message sent with the job is stale: nothing but the watchdog acts

    assert store.apply(job.id, {JobState.QUEUED}, mutate=stranded, to=JobState.SUBMITTING, check_in=0) is not None
    s.start_worker()

    record = queue.wait(job.id, timeout=90)

    assert sandbox.stats()["fetches_by_task"].get(task_id, 0) >= 1  # the adopted task was polled
    assert record.state.value == "SUCCEEDED", record.error
    assert record.upstream_task_id == task_id
    assert "polling that task" in s.worker_logs()
