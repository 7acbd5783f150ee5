"""The notify hook: the sandbox calls it the way the gateways do, `songqueue hooks` serves
it, and a hook-triggered one-shot poll notices a finished job long before the next poll."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
import redis
import requests
import stack

from producer.api.notify_hook import Forbidden, Hooks
from producer.core import hook_link
from producer.core.models.job_record import JobRecord, JobState, UncertainSubmit
from producer.core.settings import Settings
from producer.core.store.job_store import JobStore
from producer.core.task_names import ALL_QUEUES, QUEUE_POLL, QUEUE_SUBMIT
from sandbox import server as sandbox_server
from tests.support.http_fixture import LocalServer
from tests.support.job_paths import walk
from tests.unit.sandbox.test_sandbox import TASK_KEYS

pytestmark = pytest.mark.integration

KEY = "hook-test-key"


def _prompt(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def _entered(record: JobRecord, state: JobState) -> float:
    return next(t.at for t in record.transitions if t.state == state)


# --- the sandbox calls hooks like a gateway ---------------------------------------------------


@pytest.fixture
def local_sandbox() -> Iterator[sandbox_server.SandboxServer]:
    server = sandbox_server.start(api_key=KEY, generation_time=1.0, song_duration=1.0)
    yield server
    server.stop()


def _submit(server: sandbox_server.SandboxServer, body: dict) -> requests.Response:
    return requests.post(f"{server.url}/udio/generate-proxy", json=body,
                         headers={"Authorization": f"Bearer {KEY}"}, timeout=10)


def test_sandbox_posts_the_task_object_on_every_status_change(local_sandbox):
    with LocalServer() as receiver:
        url = receiver.route("/hook")
        task_ids = [_submit(local_sandbox, {"gen_params": {"prompt": _prompt(p)}, "notify_hook": url}).json()["data"]
                    for p in ("hooked", "hooked sandbox:failure")]

        def seen() -> list[dict]:
            return [json.loads(body) for method, _, _, body in list(receiver.requests) if method == "POST"]

        stack.wait_until(lambda: sum(b["status"] in ("SUCCESS", "FAILURE") for b in seen()) == 2, 10,
                         "both tasks' final hook calls")
        fetched = requests.get(f"{local_sandbox.url}/udio/fetch/{task_ids[0]}",
                               headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()["data"]

    calls = {t: [b for b in seen() if b["task_id"] == t] for t in task_ids}
    assert [b["status"] for b in calls[task_ids[0]]] == ["IN_PROGRESS", "SUCCESS"]
    assert [b["status"] for b in calls[task_ids[1]]] == ["IN_PROGRESS", "FAILURE"]
    final = calls[task_ids[0]][-1]
    # The same object as the fetch answer's data, notify_hook included.
    assert set(final) == TASK_KEYS and final["notify_hook"] == url == fetched["notify_hook"]
    assert final["progress"] == "100%" and [s["id"] for s in final["data"]["songs"]] == \
        [s["id"] for s in fetched["data"]["songs"]]
    assert calls[task_ids[1]][-1]["fail_reason"]
    stats = requests.get(f"{local_sandbox.url}/_sandbox/stats", timeout=10).json()
    assert stats["hook_calls"] == 4 and stats["hook_failures"] == 0
    assert stats["hooks_by_task"] == {task_ids[0]: 2, task_ids[1]: 2}


def test_sandbox_refuses_a_hook_that_is_not_http(local_sandbox):
    answer = _submit(local_sandbox, {"gen_params": {"prompt": "x"}, "notify_hook": "file:///etc/passwd"})
    assert answer.status_code == 400 and "notify_hook" in answer.json()["message"]


# --- what a hook call does (real Redis, no workers) ---------------------------------------------


@pytest.fixture
def hooks(redis_db_url: str) -> Iterator[Hooks]:
    url = redis_db_url
    yield Hooks(Settings(broker_url=url, redis_url=url, key_prefix=f"h{uuid.uuid4().hex[:6]}", notify_min_interval=30))
    redis.Redis.from_url(url).flushdb()


def _waiting_job(store: JobStore, task_id: str) -> JobRecord:
    record, _ = store.create(JobRecord(id=uuid.uuid4().hex, provider="udio", model="udio32-v1.5", request={}))

    def submitted(r: JobRecord) -> None:
        r.upstream_task_id = task_id

    record = walk(store, record.id, JobState.SUBMITTED, mutate=submitted)
    store.index_upstream_task("udio", task_id, record.id, 60)
    return record


def test_hook_decisions(hooks):
    broker = redis.Redis.from_url(hooks.settings.broker_url)
    record = _waiting_job(hooks.store, "task-1")

    def call(body: object, provider: str = "udio") -> tuple[int, dict]:
        return hooks.handle(provider, json.dumps(body).encode())

    assert call({"task_id": "nobody-knows", "status": "SUCCESS"})[0] == 404
    assert hooks.handle("udio", b"not json")[0] == 400
    assert call({"status": "SUCCESS"})[0] == 400
    assert call({"task_id": "task-1"}, provider="minimax")[0] == 404
    assert call({"task_id": "task-1", "status": "IN_PROGRESS"}) == (
        200, {"result": "ignored", "reason": "still running; polling covers it"})
    assert broker.llen(QUEUE_POLL) == 0
    # The end (or a status we do not know) earns one poll; a fetch-style envelope is accepted.
    assert call({"code": "success", "data": {"task_id": "task-1", "status": "SUCCESS"}}) == (
        202, {"result": "poll sent"})
    assert [call({"task_id": "task-1"})[1]["result"] for _ in range(3)] == ["throttled"] * 3
    assert broker.llen(QUEUE_POLL) == 1
    message = json.loads(broker.lindex(QUEUE_POLL, 0))
    assert message["headers"]["task"] == "songqueue.poll"
    assert json.loads(base64.b64decode(message["body"]))[:2] == [[record.id, record.token], {"once": True}]
    # A job that has moved on is left alone.
    hooks.store.apply(record.id, {JobState.SUBMITTED}, to=JobState.CANCELLED)
    assert call({"task_id": "task-1", "status": "SUCCESS"}) == (200, {"result": "ignored", "reason": "job is CANCELLED"})


# --- end to end: sandbox -> songqueue hooks -> one-shot poll -------------------------------------


@pytest.fixture
def hooked(make_stack) -> Iterator[Callable[..., tuple]]:
    """A stack whose gateway calls a `songqueue hooks` process: (stack, hook URL, log)."""
    procs: list[subprocess.Popen] = []

    def build(**overrides: str) -> tuple:
        s = make_stack(**overrides)
        log = s.tmp / "hooks.log"
        # Port 0: the server binds a port and says which; its URL then goes into the settings
        # the workers and the queue are made with (the hook server itself does not read it).
        proc = subprocess.Popen([sys.executable, "-m", "producer.cli.main", "hooks", "--port", "0"],
                                env=s.env, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, cwd=stack.ROOT,
                                start_new_session=True)
        procs.append(proc)
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("hooks listening on http://"), (line, log.read_text())
        hook_url = line.removeprefix("hooks listening on ").strip() + "/hooks/udio"
        s.env["SONGQUEUE_NOTIFY_HOOK_URL"] = hook_url
        return s, hook_url, log

    yield build
    for proc in procs:
        stack.stop(proc)


# The chain's first poll is 20 s after the submit: only the hook explains an earlier finish.
SLOW_POLLS = {"poll_initial_delay": "20", "poll_max_interval": "20"}


def test_hook_makes_the_finish_known_at_once(hooked, sandbox):
    s, hook_url, _ = hooked(**SLOW_POLLS)
    s.start_worker()
    queue = s.queue()
    prompt = _prompt("hooked sandbox:gen_time=2")

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=15)

    assert record.state == JobState.SUCCEEDED
    stats = sandbox.stats()
    task = record.upstream_task_id
    # Noticed after the upstream finished and before the chain's first poll was even due.
    first_chain_poll = _entered(record, JobState.SUBMITTED) + float(SLOW_POLLS["poll_initial_delay"])
    assert stats["tasks"][task]["finished_at"] <= _entered(record, JobState.DOWNLOADING) < first_chain_poll
    assert stats["fetches_by_task"][task] == 1  # the hook's one-shot poll, nothing else yet
    assert stats["hooks_by_task"][task] == 2  # IN_PROGRESS (ignored) and SUCCESS
    submits = [json.loads(r["body"]) for r in requests.get(f"{sandbox.url}/_sandbox/requests?limit=2000",
                                                           timeout=10).json()["requests"]
               if r["method"] == "POST" and prompt in r["body"]]
    assert len(submits) == 1 and submits[0]["notify_hook"] == hook_url and "notify_hook" not in submits[0]["gen_params"]
    # A replay once the job has moved on changes nothing.
    replay = requests.post(hook_url, json={"task_id": task, "status": "SUCCESS"}, timeout=10)
    assert replay.status_code == 200 and replay.json()["result"] == "ignored"
    assert sandbox.stats()["fetches_by_task"][task] == 1


def test_forged_and_replayed_hooks_cause_at_most_one_poll(hooked, sandbox):
    s, hook_url, _ = hooked(**SLOW_POLLS, notify_min_interval="60")
    broker = redis.Redis.from_url(s.env["SONGQUEUE_BROKER_URL"])

    forged = requests.post(hook_url, json={"task_id": str(uuid.uuid4()), "status": "SUCCESS"}, timeout=10)
    assert forged.status_code == 404
    assert all(broker.llen(q) == 0 for q in ALL_QUEUES)
    assert requests.post(hook_url, data=b"{oops", timeout=10).status_code == 400

    s.start_worker()
    queue = s.queue()
    job = queue.submit({"prompt": _prompt("forever sandbox:never_finish")})
    task = stack.wait_until(lambda: queue.status(job.id).upstream_task_id, 30, "the upstream task id")
    lie = {"task_id": task, "status": "SUCCESS", "progress": "100%"}
    results = [requests.post(hook_url, json=lie, timeout=10).json()["result"] for _ in range(3)]

    assert results == ["poll sent", "throttled", "throttled"]

    def fetches() -> int:
        return sandbox.stats()["fetches_by_task"].get(task, 0)

    stack.wait_until(lambda: fetches() == 1, 10, "the one-shot poll")
    record = stack.wait_until(lambda: (r := queue.status(job.id)).state == JobState.GENERATING and r, 10,
                              "the poll's merge")
    # The body said SUCCESS; the upstream said otherwise, and only the upstream counts.
    assert record.progress < 100 and not record.songs
    # The one-shot poll scheduled no poll of its own: nothing until the chain's, 20 s after submit.
    with pytest.raises(TimeoutError):
        stack.wait_until(lambda: fetches() > 1, 4, "a second fetch")
    assert queue.status(job.id).token == record.token


# --- reconciling an uncertain submit from the signed per-job hook URL ---------------------------

SECRET = "hook-test-secret"


@pytest.fixture
def signed_hooks(redis_db_url: str) -> Iterator[Hooks]:
    url = redis_db_url
    yield Hooks(Settings(broker_url=url, redis_url=url, key_prefix=f"h{uuid.uuid4().hex[:6]}",
                         notify_min_interval=30, callback_secret=SECRET,
                         notify_hook_url="https://hooks.example.com/hooks/udio"))
    redis.Redis.from_url(url).flushdb()


def _submitting_job(store: JobStore, uncertain: bool) -> JobRecord:
    record, _ = store.create(JobRecord(id=uuid.uuid4().hex, provider="udio", model="udio32-v1.5", request={}))

    def intend(r: JobRecord) -> None:
        if uncertain:
            r.uncertain_submit = UncertainSubmit(since=time.time(), reason="HTTP 502", charged=True)

    written = store.apply(record.id, {JobState.QUEUED}, mutate=intend, to=JobState.SUBMITTING)
    assert written is not None
    return written


def _query(settings: Settings, job_id: str) -> dict[str, str]:
    url = hook_link.job_hook_url(settings, "udio", job_id, 0)
    return dict(parse_qsl(urlsplit(url).query))


def test_signed_hook_decisions(signed_hooks):
    hooks = signed_hooks
    broker = redis.Redis.from_url(hooks.settings.broker_url)
    store = hooks.store
    body = json.dumps({"task_id": "task-A", "status": "IN_PROGRESS"}).encode()

    # Forged and altered signatures: refused, nothing written, nothing sent.
    waiting = _submitting_job(store, uncertain=True)
    other = _submitting_job(store, uncertain=True)
    good = _query(hooks.settings, waiting.id)
    # The last hex digit changed (to "0" it would stay the same one time in sixteen).
    altered = good["sig"][:-1] + ("1" if good["sig"].endswith("0") else "0")
    for job, sig in [(waiting.id, "0" * 64), (waiting.id, altered), (other.id, good["sig"]),
                     (waiting.id, ""), (waiting.id, "é" * 64), ("", good["sig"])]:
        with pytest.raises(Forbidden):
            hooks.handle("udio", body, job, sig)
    with pytest.raises(Forbidden):  # signed for udio, presented as suno
        hooks.handle("suno", body, waiting.id, good["sig"])
    assert store.get(waiting.id) == waiting and store.get(other.id) == other
    assert all(broker.llen(q) == 0 for q in ALL_QUEUES)

    # A waiting uncertain submit: the id is noted once and the submit is sent to record it.
    assert hooks.handle("udio", body, waiting.id, good["sig"]) == (202, {"result": "reconciling"})
    noted = store.get(waiting.id)
    assert noted.notified_task_id == "task-A" and noted.state == JobState.SUBMITTING
    message = json.loads(broker.lindex(QUEUE_SUBMIT, 0))
    assert message["headers"]["task"] == "songqueue.submit"
    assert json.loads(base64.b64decode(message["body"]))[0] == [waiting.id, noted.token]
    # A repeat resends the submit at most once per SONGQUEUE_NOTIFY_MIN_INTERVAL.
    assert hooks.handle("udio", body, waiting.id, good["sig"]) == (202, {"result": "reconciling"})
    assert hooks.handle("udio", body, waiting.id, good["sig"]) == (200, {"result": "throttled"})
    assert broker.llen(QUEUE_SUBMIT) == 2
    # Another task id for the same job changes nothing.
    other_body = json.dumps({"task_id": "task-B"}).encode()
    assert hooks.handle("udio", other_body, waiting.id, good["sig"])[1]["result"] == "ignored"
    assert store.get(waiting.id) == noted

    # A submit still in its call: the id is noted for it, nothing sent.
    in_call = _submitting_job(store, uncertain=False)
    assert hooks.handle("udio", body, in_call.id, _query(hooks.settings, in_call.id)["sig"]) == (
        202, {"result": "task id noted"})
    assert store.get(in_call.id).notified_task_id == "task-A" and broker.llen(QUEUE_SUBMIT) == 2

    # A job that already has its task id: the signed call changes nothing on the record.
    submitted = _waiting_job(store, "task-1")
    sig = _query(hooks.settings, submitted.id)["sig"]
    assert hooks.handle("udio", other_body, submitted.id, sig)[0] == 404
    assert hooks.handle("udio", json.dumps({"task_id": "task-1", "status": "SUCCESS"}).encode(), submitted.id,
                        sig) == (202, {"result": "poll sent"})
    assert store.get(submitted.id) == submitted

    # An ended job is not revived.
    store.apply(other.id, {JobState.SUBMITTING}, to=JobState.FAILED)
    ended = store.get(other.id)
    assert hooks.handle("udio", body, other.id, _query(hooks.settings, other.id)["sig"]) == (
        200, {"result": "ignored", "reason": "job is FAILED"})
    assert store.get(other.id) == ended


@pytest.mark.parametrize(("submit_path", "dialect"), [("/udio/generate-proxy", "302ai"),
                                                      ("/udio/submit/music", "openai-hk")])
def test_the_sandbox_reconciles_a_lost_answer_through_the_hook(hooked, sandbox, submit_path: str, dialect: str):
    """submit_accept_502: the gateway made the task and the proxy lost its answer; the
    gateway's hook names the task, and the job ends SUCCEEDED with one paid submit."""
    s, hook_url, log = hooked(callback_secret=SECRET, udio_price_per_call="1.5", udio_submit_path=submit_path)
    s.start_worker()
    queue = s.queue()
    faults_before = sandbox.stats()["faults"].get("submit_accept_502", 0)
    prompt = _prompt("reconciled sandbox:submit_accept_502 sandbox:gen_time=3")

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=60)

    stats = sandbox.stats()
    assert stats["faults"].get("submit_accept_502", 0) == faults_before + 1  # the answer was lost...
    assert stats["submits_by_prompt"][prompt] == 1  # ...after the gateway made the task, once
    (task,) = [t for t, info in stats["tasks"].items() if info["prompt"] == prompt]
    assert stats["tasks"][task]["dialect"] == dialect
    assert stats["hooks_by_task"][task] >= 1  # the gateway called the hook about it
    assert record.state == JobState.SUCCEEDED, record.error
    assert record.upstream_task_id == task and record.notified_task_id == task and record.waiting_for is None
    assert record.attempts["submit"] == 1 and record.cost == 1.5  # charged once
    assert "the notify hook names upstream task" in log.read_text()
    submits = [json.loads(r["body"]) for r in requests.get(f"{sandbox.url}/_sandbox/requests?limit=2000",
                                                           timeout=10).json()["requests"]
               if r["method"] == "POST" and prompt in r["body"]]
    query = dict(parse_qsl(urlsplit(submits[0]["notify_hook"]).query))
    assert submits[0]["notify_hook"].startswith(hook_url + "?") and query["job"] == record.id
    assert SECRET not in json.dumps(submits) and SECRET not in s.worker_logs()

    # A forged call for the same job is refused as problem+json, and the job is untouched.
    forged = requests.post(hook_url, params={"job": record.id, "sig": "f" * 64},
                           json={"task_id": "someone-elses", "status": "SUCCESS"}, timeout=10)
    assert forged.status_code == 403 and forged.headers["content-type"] == "application/problem+json"
    assert forged.json()["status"] == 403
    assert queue.status(record.id).model_dump() == record.model_dump()


def test_an_uncertain_submit_waits_a_bounded_time_for_a_hook_that_never_comes(hooked, sandbox):
    """The gateway's hook calls go nowhere: the job waits SONGQUEUE_UNCERTAIN_HOOK_WAIT, then
    SONGQUEUE_UNCERTAIN_SUBMIT=fail decides, saying why; nothing is sent twice."""
    s, _, _ = hooked(callback_secret=SECRET, uncertain_hook_wait="2", watchdog_interval="1")
    s.env["SONGQUEUE_NOTIFY_HOOK_URL"] = f"http://127.0.0.1:{stack.free_port()}/hooks/udio"  # nobody listens
    s.start_worker()
    queue = s.queue()
    hook_failures = sandbox.stats().get("hook_failures", 0)
    prompt = _prompt("unheard sandbox:submit_accept_drop sandbox:gen_time=1")

    job = queue.submit({"prompt": prompt})
    waiting = stack.wait_until(lambda: (r := queue.status(job.id)).uncertain_submit and r, 30, "the wait for the hook")
    assert waiting.state == JobState.SUBMITTING and "notify hook" in (waiting.waiting_for or "")
    record = queue.wait(job.id, timeout=60)

    assert sandbox.stats()["hook_failures"] > hook_failures  # the gateway did try the (dead) hook
    assert sandbox.stats()["submits_by_prompt"][prompt] == 1
    assert record.state == JobState.FAILED and record.error.code == "submit_uncertain"
    assert "closed the connection" in record.error.message
    assert "SONGQUEUE_UNCERTAIN_HOOK_WAIT=2 s" in record.error.message
    assert _entered(record, JobState.FAILED) - waiting.uncertain_submit.since >= 2


def test_a_worker_killed_after_the_paid_call_is_reconciled_through_the_hook(hooked, sandbox):
    """The worker dies between the gateway's answer and its record: the task id is lost
    with it, but the gateway's hook names it; one submit, charged once."""
    s, _, _ = hooked(callback_secret=SECRET, udio_price_per_call="1.5", fault_point="submit.after_call:kill",
                     watchdog_grace="2", watchdog_interval="1")
    s.start_worker()
    queue = s.queue()
    prompt = _prompt("killed after the call sandbox:gen_time=3")

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=90)

    prefix = s.env["SONGQUEUE_KEY_PREFIX"]
    hit = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"]).get(f"{prefix}:faultpoint:submit.after_call")
    assert hit.split(b"|")[0] == b"kill"  # "<action>|<job>|<time>"
    assert "fault point submit.after_call: kill" in s.worker_logs()  # the crash landed after the paid call
    stats = sandbox.stats()
    (task,) = [t for t, info in stats["tasks"].items() if info["prompt"] == prompt]
    assert stats["submits_by_prompt"][prompt] == 1 and stats["hooks_by_task"][task] >= 1
    assert record.state == JobState.SUCCEEDED, record.error
    assert record.upstream_task_id == task and record.cost == 1.5


def test_a_hook_signed_for_a_replaced_run_is_refused(signed_hooks):
    """The URL of run 0 stops working once `songqueue retry` made run 1: a late call of the
    gateway about the old run cannot name a task for the new one."""
    from producer.client.songqueue import SongQueue

    hooks = signed_hooks
    store = hooks.store
    record = _submitting_job(store, uncertain=True)
    old_sig = _query(hooks.settings, record.id)["sig"]  # made for run 0
    store.apply(record.id, {JobState.SUBMITTING}, to=JobState.FAILED)
    replayed = SongQueue(hooks.settings).retry(record.id)
    assert replayed.run == 1  # the replay happened: the check below can fail
    store.apply(record.id, {JobState.QUEUED}, mutate=lambda r: setattr(
        r, "uncertain_submit", UncertainSubmit(since=time.time(), reason="HTTP 502", charged=True)),
        to=JobState.SUBMITTING)
    body = json.dumps({"task_id": "task-late"}).encode()
    with pytest.raises(Forbidden):
        hooks.handle("udio", body, record.id, old_sig)
    assert store.get(record.id).notified_task_id is None
    new_sig = hook_link.job_hook_url(hooks.settings, "udio", record.id, 1).rsplit("sig=", 1)[1]
    assert hooks.handle("udio", body, record.id, new_sig) == (202, {"result": "reconciling"})
