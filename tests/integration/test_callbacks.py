"""Outbound callbacks end to end: real workers POST signed job status to a real HTTP receiver."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import pytest
import redis
import requests
import stack
from standardwebhooks import Webhook, WebhookVerificationError

from producer.core.callbacks import CallbackUrlError, origin, receiver_secret_text, terminal_delivery
from producer.core.models.job_record import JobRecord, JobState
from producer.core.store import endpoints, keys
from producer.core.task_names import ALL_QUEUES
from tests.integration.test_http_api import start_api  # noqa: F401 - the fixture
from tests.support.console import console_login, csrf_of
from tests.support.http_fixture import LocalServer, closed_port
from tests.support.node_receiver import node_receiver

pytestmark = pytest.mark.integration

SECRET = "whsec-test-7f3a9c1e"
# A compressed schedule so a test sees several attempts in seconds.
FAST = {"callback_secret": SECRET, "callback_schedule": "0,0.3,0.5,1,1,1"}


def _prompt(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def answers(*codes: int) -> Callable[[BaseHTTPRequestHandler], None]:
    """A receiver that answers `codes` in turn, then 200."""
    left = list(codes)

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(left.pop(0) if left else 200)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handle


def verified(headers: dict[str, str], body: bytes, url: str, secret: str = SECRET) -> bool:
    """What a receiver does (docs/callbacks-and-hooks.md): verify the Standard Webhooks headers
    with its own secret (`songqueue callback-secret URL`), with the reference library."""
    try:
        Webhook(receiver_secret_text(secret.encode(), url)).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def posts(receiver: LocalServer, path: str) -> list[tuple[dict[str, str], bytes]]:
    return [(headers, body) for method, p, headers, body in list(receiver.requests) if method == "POST" and p == path]


def attempts(queue, job_id: str) -> list:
    return queue.status(job_id).callbacks


def test_signed_callbacks_on_progress_and_success(make_stack):
    s = make_stack(**FAST)
    s.start_worker()
    queue = s.queue()
    with LocalServer() as receiver:
        url = receiver.route("/hook", handler=answers())
        job = queue.submit({"prompt": _prompt("calm piano sandbox:gen_time=3")}, callback_url=url, callback_progress=True)
        record = queue.wait(job.id, timeout=60)
        assert record.state == JobState.SUCCEEDED
        stack.wait_until(lambda: any(json.loads(b)["event"] == "job.succeeded" for _, b in posts(receiver, "/hook")),
                         20, "the job.succeeded callback")

        received = posts(receiver, "/hook")
        events = [json.loads(body)["event"] for _, body in received]
        assert events.count("job.succeeded") == 1 and "job.progress" in events
        for headers, body in received:
            assert verified(headers, body, url)
            assert not verified(headers, body + b" ", url)  # a changed body fails the check
            assert not verified(headers, body, url, secret="another-secret")
            # Nothing sent is keyed with the master secret: the deprecated headers are gone.
            assert "X-Songqueue-Signature" not in headers and "X-Songqueue-Timestamp" not in headers
            assert headers["Content-Type"] == "application/json"
            assert headers["X-Songqueue-Event"] == json.loads(body)["event"]
        final = json.loads(next(body for _, body in received if json.loads(body)["event"] == "job.succeeded"))
        assert final["id"] == job.id and final["state"] == "SUCCEEDED" and final["progress"] == 100
        assert final["error"] is None and len(final["songs"]) == 2
        assert final["songs"][0]["audio"]["sha256"] == record.songs[0].audio.sha256
        assert final["delivery"] == dict(received[events.index("job.succeeded")][0])["webhook-id"]
        # Every delivery is on the record; the URL and the secret are in no task argument.
        done = stack.wait_until(lambda: len(attempts(queue, job.id)) == len(received) and attempts(queue, job.id),
                                10, "every attempt recorded")
        assert all(a.status_code == 200 and a.error is None and a.attempt == 1 for a in done)
        assert SECRET not in s.worker_logs() and url not in s.worker_logs()


def test_failing_receiver_is_retried_and_the_job_is_unaffected(make_stack):
    s = make_stack(**FAST)
    s.start_worker()
    queue = s.queue()
    with LocalServer() as receiver:
        url = receiver.route("/flaky", handler=answers(503, 503))
        job = queue.submit({"prompt": _prompt("flaky receiver sandbox:gen_time=1")}, callback_url=url)
        assert queue.wait(job.id, timeout=60).state == JobState.SUCCEEDED
        tries = stack.wait_until(lambda: (a := attempts(queue, job.id)) and a[-1].status_code == 200 and a,
                                 30, "the third attempt to be delivered")

        assert [(a.attempt, a.status_code) for a in tries] == [(1, 503), (2, 503), (3, 200)]
        assert tries[0].error == "HTTP 503" and len({a.delivery for a in tries}) == 1
        assert all(a.event == "job.succeeded" for a in tries) and tries[0].at < tries[1].at < tries[2].at
        received = posts(receiver, "/flaky")
        assert len(received) == 3 and len({h["webhook-id"] for h, _ in received}) == 1
        record = queue.status(job.id)
        assert record.state == JobState.SUCCEEDED and record.error is None
        assert [t.state for t in record.transitions][-1] == JobState.SUCCEEDED


def test_receiver_down_costs_the_job_nothing_and_attempts_are_bounded(make_stack):
    s = make_stack(**{**FAST, "callback_schedule": "0,0.3,0.3"}, callback_timeout="1")
    s.start_worker()
    queue = s.queue()
    job = queue.submit({"prompt": _prompt("nobody listens sandbox:gen_time=1")},
                       callback_url=f"http://127.0.0.1:{closed_port()}/down")

    assert queue.wait(job.id, timeout=60).state == JobState.SUCCEEDED
    stack.wait_until(lambda: "callback not delivered, giving up after attempt 3" in s.worker_logs(), 30,
                     "the delivery to give up")
    tries = attempts(queue, job.id)
    assert [a.attempt for a in tries] == [1, 2, 3]
    assert all(a.status_code is None and a.error == "could not connect" for a in tries)
    record = queue.status(job.id)
    assert record.state == JobState.SUCCEEDED and record.error is None and record.manifest is not None


def test_cancelled_job_calls_back(make_stack):
    s = make_stack(**FAST)
    s.start_worker()
    queue = s.queue()
    with LocalServer() as receiver:
        url = receiver.route("/cancel", handler=answers())
        job = queue.submit({"prompt": _prompt("endless sandbox:never_finish")}, callback_url=url)
        stack.wait_until(lambda: queue.status(job.id).state == JobState.GENERATING, 30, "the job to generate")

        result = s.cli("cancel", job.id)

        assert result.returncode == 0, result.stderr
        headers, body = stack.wait_until(lambda: posts(receiver, "/cancel") and posts(receiver, "/cancel")[0], 20,
                                         "the cancel callback")
        sent = json.loads(body)
        assert verified(headers, body, url)
        assert sent["event"] == "job.cancelled" and sent["state"] == "CANCELLED"
        assert sent["error"] == {"code": "cancelled", "message": "cancelled by request"}
        tries = stack.wait_until(lambda: attempts(queue, job.id), 10, "the attempt recorded")
        assert [(a.event, a.status_code) for a in tries] == [("job.cancelled", 200)]


@pytest.mark.parametrize(("url", "rule"), [
    ("ftp://example.com/hook", "http:// or https://"),
    ("http://user:pw@example.com/hook", "credentials"),
    ("https:///hook", "host"),
    ("https://callbacks.evil.test/hook", "SONGQUEUE_CALLBACK_ALLOWED_HOSTS"),
])
def test_bad_callback_url_is_refused_before_anything_is_written(make_stack, url, rule):
    s = make_stack(callback_allowed_hosts="example.com")

    result = s.cli("submit", "--prompt", _prompt("never sent"), "--callback-url", url)

    assert result.returncode == 2
    assert "--callback-url" in result.stderr and rule in result.stderr
    with pytest.raises(CallbackUrlError, match=f"callback_url: .*{rule.split()[0]}"):
        s.queue().submit({"prompt": "never sent"}, callback_url=url)
    store = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])
    assert store.keys(s.env["SONGQUEUE_KEY_PREFIX"] + ":*") == []
    assert all(store.llen(q) == 0 for q in ALL_QUEUES)


def test_callback_progress_needs_a_url(make_stack):
    s = make_stack()
    result = s.cli("submit", "--prompt", "x", "--callback-progress")
    assert result.returncode == 2 and "--callback-progress" in result.stderr
    with pytest.raises(ValueError, match="callback_progress"):
        s.queue().submit({"prompt": "x"}, callback_progress=True)


def test_job_record_without_callbacks_reads_as_before():
    """Records written before callbacks existed still load."""
    old = {"id": "j1", "provider": "udio", "model": "udio32-v1.5", "request": {"prompt": "p"}}
    record = JobRecord.model_validate(old)
    assert record.callback_url is None and record.callbacks == [] and not record.callback_progress


def test_an_owed_callback_is_sent_by_the_watchdog_round(make_stack):
    """What a worker that died between the terminal write and the send leaves behind: the
    job FAILED in Redis and its callback still in the outbox. A worker's own watchdog
    round (no beat) sends it, with the delivery id of that end, and settles the debt."""
    s = make_stack(**FAST, watchdog_interval="0.5")
    queue = s.queue()
    store = queue.store
    with LocalServer() as receiver:
        url = receiver.route("/owed", handler=answers())
        record = JobRecord(id=uuid.uuid4().hex, provider="udio", model="udio32-v1.5",
                           request={"prompt": "owed"}, callback_url=url)
        store.create(record)
        store.apply(record.id, {JobState.QUEUED}, to=JobState.FAILED)
        store.owe_callback(record.id, 0)
        s.start_worker()

        stack.wait_until(lambda: posts(receiver, "/owed"), 30, "the owed callback")
        stack.wait_until(lambda: not store.owed_callbacks(time.time() + 3600), 30, "the debt settled")

        [(headers, body)] = posts(receiver, "/owed")
        payload = json.loads(body)
        assert payload["event"] == "job.failed" and payload["id"] == record.id and verified(headers, body, url)
        assert headers["webhook-id"] == terminal_delivery(store.get(record.id))


def test_410_gone_stops_delivery_and_disables_the_endpoint(make_stack):
    s = make_stack(**FAST)
    s.start_worker()
    queue = s.queue()
    with LocalServer() as receiver:
        url = receiver.route("/gone", handler=answers(410))
        job = queue.submit({"prompt": _prompt("gone receiver sandbox:gen_time=1")}, callback_url=url)
        assert queue.wait(job.id, timeout=60).state == JobState.SUCCEEDED
        stack.wait_until(lambda: "callbacks: http://127.0.0.1" in s.worker_logs() and attempts(queue, job.id), 30,
                         "the 410 to be recorded")
        [tried] = attempts(queue, job.id)
        assert tried.status_code == 410 and len(posts(receiver, "/gone")) == 1
        [endpoint] = endpoints.every(queue.store.redis, queue.store.prefix)
        assert endpoint.origin == origin(url) and endpoint.disabled and "410" in endpoint.reason

        # The next job's delivery to that origin is not attempted: skipped, with the reason.
        later = queue.submit({"prompt": _prompt("still gone sandbox:gen_time=1")}, callback_url=url)
        assert queue.wait(later.id, timeout=60).state == JobState.SUCCEEDED
        [skipped] = stack.wait_until(lambda: attempts(queue, later.id), 30, "the skipped attempt")
        assert skipped.status_code is None and "skipped" in (skipped.error or "") and "disabled" in skipped.error
        assert len(posts(receiver, "/gone")) == 1, "nothing more was sent to the origin"


def test_an_endpoint_failing_past_disable_after_is_disabled(make_stack):
    s = make_stack(**{**FAST, "callback_schedule": "0,0.5,0.5,0.5,0.5"}, callback_disable_after="0.8",
                   callback_timeout="1")
    s.start_worker()
    queue = s.queue()
    url = f"http://127.0.0.1:{closed_port()}/down"
    job = queue.submit({"prompt": _prompt("down for days sandbox:gen_time=1")}, callback_url=url)
    assert queue.wait(job.id, timeout=60).state == JobState.SUCCEEDED
    tries = stack.wait_until(lambda: (a := attempts(queue, job.id)) and "skipped" in (a[-1].error or "") and a, 30,
                             "a delivery skipped once the endpoint is disabled")
    assert tries[0].error == "could not connect" and tries[-1].status_code is None
    endpoint = endpoints.get(queue.store.redis, queue.store.prefix, origin(url))
    assert endpoint.disabled and endpoint.failing_since is not None and "failing since" in endpoint.reason

    listed = s.cli("callbacks", "endpoints", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["origin"] == origin(url) and row["state"] == "disabled" and row["last_success"] is None
    enabled = s.cli("callbacks", "endpoints", "--enable", origin(url))
    assert enabled.returncode == 0, enabled.stderr
    after = endpoints.get(queue.store.redis, queue.store.prefix, origin(url))
    assert not after.disabled and after.failing_since is None
    assert s.cli("callbacks", "endpoints", "--enable", "http://unknown.test:80").returncode == 2


def test_a_long_wait_is_parked_and_sent_by_a_watchdog_round(make_stack):
    """A wait past RETRY_MAX_DELAY is no broker countdown (it would outlive the visibility
    timeout): it waits in Redis, and a watchdog round sends it when due."""
    s = make_stack(**{**FAST, "callback_schedule": "0,1.5"}, retry_max_delay="1", watchdog_interval="0.5")
    s.start_worker()
    queue = s.queue()
    with LocalServer() as receiver:
        url = receiver.route("/later", handler=answers(503))
        job = queue.submit({"prompt": _prompt("parked sandbox:gen_time=1")}, callback_url=url)
        assert queue.wait(job.id, timeout=60).state == JobState.SUCCEEDED
        tries = stack.wait_until(lambda: (a := attempts(queue, job.id)) and a[-1].status_code == 200 and a, 30,
                                 "the parked second attempt")
        assert [(a.attempt, a.status_code) for a in tries] == [(1, 503), (2, 200)]
        assert tries[1].at - tries[0].at >= 1.5
        assert queue.store.redis.zcard(keys.callback_parked(queue.store.prefix)) == 0


def test_replay_resends_the_event_with_its_webhook_id(start_api):  # noqa: F811
    """The API route (tenant-checked, problem+json), the CLI and the console button each send
    the event again under the same webhook-id; each attempt lands in the job's callbacks."""
    api = start_api(**FAST)
    key, stranger, admin = api.key(), api.key(), api.key("--scopes", "admin")
    with LocalServer() as receiver:
        url = receiver.route("/replayed", handler=answers())
        made = api.call("POST", "/v1/jobs", key, json={"provider": "udio", "request": {
            "prompt": _prompt("replay me sandbox:gen_time=1")}, "callback_url": url})
        assert made.status_code == 201, made.text
        job_id = made.json()["id"]
        queue = api.stack_.queue()
        [first] = stack.wait_until(lambda: attempts(queue, job_id), 60, "the first delivery")
        assert first.status_code == 200

        path = f"/v1/jobs/{job_id}/callbacks/{first.delivery}/replay"
        hidden = api.call("POST", path, stranger)
        assert hidden.status_code == 404 and hidden.headers["Content-Type"] == "application/problem+json"
        unknown = api.call("POST", f"/v1/jobs/{job_id}/callbacks/{'0' * 32}/replay", key)
        assert unknown.status_code == 404 and "no callback delivery" in unknown.json()["detail"]
        sent = api.call("POST", path, key)
        assert sent.status_code == 202, sent.text
        assert sent.json() == {"job_id": job_id, "delivery": first.delivery, "event": "job.succeeded", "attempt": 2}
        by_cli = api.stack_.cli("callbacks", "replay", job_id, first.delivery, "--json")
        assert by_cli.returncode == 0, by_cli.stderr
        assert api.stack_.cli("callbacks", "replay", job_id, "nope").returncode == 2

        # The console: the button on the event's latest attempt posts the same replay.
        console = requests.Session()
        assert console_login(console, api.url, admin).ok
        tries = stack.wait_until(lambda: len(a := attempts(queue, job_id)) == 3 and a, 30, "both replays")
        page = console.get(f"{api.url}/console/jobs/{job_id}", timeout=30).text
        assert page.count('class="replay"') == 1 and f"/callbacks/{first.delivery}/replay" in page
        forged = console.post(f"{api.url}/console/jobs/{job_id}/callbacks/{first.delivery}/replay", timeout=30)
        assert forged.status_code == 403  # no CSRF token: not sent
        clicked = console.post(f"{api.url}/console/jobs/{job_id}/callbacks/{first.delivery}/replay",
                               data={"csrf": csrf_of(page)}, timeout=30)
        assert clicked.ok and clicked.url.endswith(f"/console/jobs/{job_id}")
        tries = stack.wait_until(lambda: len(a := attempts(queue, job_id)) == 4 and a, 30, "the console's replay")

        assert [(a.attempt, a.replay, a.status_code) for a in tries] == [(1, False, 200), (2, True, 200),
                                                                          (3, True, 200), (4, True, 200)]
        received = posts(receiver, "/replayed")
        assert len(received) == 4 and {h["webhook-id"] for h, _ in received} == {first.delivery}
        assert all(verified(h, b, url) for h, b in received)

        # A disabled origin: the console says so on every page (a count, no origins).
        assert 'id="endpoints-disabled"' not in page
        endpoints.disable(queue.store.redis, queue.store.prefix, origin(url), "answered 410 Gone")
        assert 'id="endpoints-disabled"' in console.get(f"{api.url}/console/jobs", timeout=30).text


def test_a_node_receiver_verifies_real_deliveries_across_a_rotation_and_an_outage(make_stack):
    """The `standardwebhooks` npm package, in a real Node.js receiver, verifies what real workers
    send: with the origin's first secret; after `callback-secret rotate`, during the overlap, with
    the new secret alone; and after the receiver was down (503) and came back, every event of the
    jobs that ended meanwhile arrives at least once, verified, deduplicable by its webhook-id."""
    s = make_stack(**{**FAST, "callback_schedule": "0,1,1,2,2,2"})
    s.start_worker()
    queue = s.queue()
    with node_receiver("whsec_" + "A" * 32) as receiver:
        url = f"{receiver.url}/hook"
        first = s.cli("callback-secret", url)
        assert first.returncode == 0, first.stderr
        receiver.use_secret(first.stdout.strip())
        job = queue.submit({"prompt": _prompt("node one sandbox:gen_time=1")}, callback_url=url)
        stack.wait_until(lambda: any(d["verified"] for d in receiver.deliveries()), 60, "the first verified delivery")

        rotated = s.cli("callback-secret", "rotate", url)
        assert rotated.returncode == 0, rotated.stderr
        new = rotated.stdout.strip()
        assert new.startswith("whsec_") and new != first.stdout.strip()
        assert s.cli("callback-secret", url).stdout.strip() == new  # the current secret is the new one
        receiver.use_secret(new)  # the receiver holds the new secret only
        second = queue.submit({"prompt": _prompt("node two sandbox:gen_time=1")}, callback_url=url)
        stack.wait_until(lambda: len(receiver.deliveries()) >= 2, 60, "the delivery after the rotation")
        after = receiver.deliveries()[1]
        assert after["verified"] and after["signatures"] == ["v1", "v1"], after  # new and old, during the overlap

        receiver.answer(503)  # down
        down = [queue.submit({"prompt": _prompt(f"node down {n} sandbox:gen_time=1")}, callback_url=url)
                for n in range(2)]
        stack.wait_until(lambda: sum(d["answered"] == 503 for d in receiver.deliveries()) >= 4, 60,
                         "two failed deliveries of each event")
        receiver.answer(200)  # back
        ends = {terminal_delivery(queue.wait(j.id, timeout=60)) for j in down}
        got = stack.wait_until(lambda: ends <= {d["id"] for d in receiver.deliveries() if d["answered"] == 200}
                               and receiver.deliveries(), 60, "every event after the receiver came back")

    assert all(d["verified"] for d in got), [d["error"] for d in got if not d["verified"]]
    assert [d["event"] for d in got[:2]] == ["job.succeeded", "job.succeeded"]
    ids = [d["id"] for d in got]
    assert len(ids) > len(set(ids)), "some events arrived more than once: the receiver dedupes on webhook-id"
    assert {terminal_delivery(queue.status(j.id)) for j in (job, second, *down)} == set(ids)


def test_callback_events_filter_and_progress_throttle(make_stack):
    """A job that asked for progress only gets no end event (and owes none), and at most one
    progress event per SONGQUEUE_CALLBACK_PROGRESS_INTERVAL."""
    s = make_stack(**FAST, callback_progress_interval="600")
    s.start_worker()
    queue = s.queue()
    with LocalServer() as receiver:
        url = receiver.route("/filtered", handler=answers())
        bad = s.cli("submit", "--prompt", "x", "--callback-url", url, "--callback-events", "job.progress,completed")
        assert bad.returncode == 2 and "--callback-events" in bad.stderr and "completed" in bad.stderr
        job = queue.submit({"prompt": _prompt("filtered sandbox:gen_time=3")}, callback_url=url,
                           callback_events=["job.progress"])
        assert queue.status(job.id).callback_events == ["job.progress"]
        assert queue.wait(job.id, timeout=60).state == JobState.SUCCEEDED
        stack.wait_until(lambda: posts(receiver, "/filtered"), 20, "the progress event")
        stack.wait_until(lambda: not queue.store.owed_callbacks(time.time() + 3600), 20, "nothing owed")
        events = [json.loads(b)["event"] for _, b in posts(receiver, "/filtered")]
        assert events == ["job.progress"], events  # one, though progress moved several times


def test_callback_events_are_refused_by_name_over_http(start_api):  # noqa: F811
    api = start_api(workers=False, **FAST)
    key = api.key()
    answer = api.call("POST", "/v1/jobs", key, json={"provider": "udio", "request": {"prompt": "x"},
                                                      "callback_url": "http://127.0.0.1:9/h",
                                                      "callback_events": ["job.succeeded", "completed"]})
    assert answer.status_code == 422 and answer.headers["Content-Type"] == "application/problem+json"
    [error] = answer.json()["errors"]
    assert error["field"].startswith("callback_events") and "'completed'" in error["rule"], error
