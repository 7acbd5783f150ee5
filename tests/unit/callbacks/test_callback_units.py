"""Callback pieces without workers: the URL rule, the signature, how an answer is classed."""

from __future__ import annotations

import base64
import hashlib
import hmac
from http.server import BaseHTTPRequestHandler

import pytest

from producer.core.callbacks import CallbackUrlError, check_callback_url, receiver_secret, receiver_secret_text
from producer.core.url_guard import UrlPolicy
from tests.support.http_fixture import LocalServer, closed_port
from workers.callback_delivery import post

ALLOWED = UrlPolicy(frozenset({"example.com"}), list_name="SONGQUEUE_CALLBACK_ALLOWED_HOSTS")
LOCAL = UrlPolicy(allow_private=True)  # the receivers below run on 127.0.0.1


@pytest.mark.parametrize("url", [
    "https://example.com/hook",
    "http://hooks.example.com:8443/a/b?token=x",
    "  https://EXAMPLE.com/hook  ",
])
def test_allowed_urls(url):
    assert check_callback_url(url, ALLOWED).url == url.strip()


@pytest.mark.parametrize(("url", "rule"), [
    ("example.com/hook", "http:// or https://"),
    ("javascript:alert(1)", "http:// or https://"),
    ("https://example.com:99999/hook", "port"),
    ("https://a:b@example.com/hook", "credentials"),
    ("https://notexample.com/hook", "not in SONGQUEUE_CALLBACK_ALLOWED_HOSTS"),
    ("https://example.com.evil.test/hook", "not in SONGQUEUE_CALLBACK_ALLOWED_HOSTS"),
    ("https://example.com/" + "a" * 2100, "over the limit of 2048"),
])
def test_refused_urls(url, rule):
    with pytest.raises(CallbackUrlError) as caught:
        check_callback_url(url, ALLOWED)
    assert rule in caught.value.rule and str(caught.value).startswith("callback_url: ")


def test_private_hosts_are_refused_unless_allowed():
    with pytest.raises(CallbackUrlError, match="private address") as caught:
        check_callback_url("http://10.0.0.7:9000/x", UrlPolicy())
    assert caught.value.code == "url_private_address"
    assert check_callback_url("http://10.0.0.7:9000/x", LOCAL).url == "http://10.0.0.7:9000/x"
    assert check_callback_url("http://10.0.0.7:9000/x", UrlPolicy(frozenset({"10.0.0.7"}))).url


def test_any_public_host_without_an_allow_list():
    assert check_callback_url("https://hooks.example.com/x", UrlPolicy()).url == "https://hooks.example.com/x"


def _status(code: int, headers: dict[str, str] | None = None):
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(code)
        for name, value in {"Content-Length": "0", **(headers or {})}.items():
            h.send_header(name, value)
        h.end_headers()
    return handle


@pytest.mark.parametrize(("code", "headers", "delivered", "retryable", "retry_after"), [
    (204, None, True, False, None),
    (503, None, False, True, None),
    (429, {"Retry-After": "7"}, False, True, 7.0),
    (404, None, False, False, None),
    (302, {"Location": "file:///etc/passwd"}, False, False, None),
])
def test_answers_are_classed(code, headers, delivered, retryable, retry_after):
    with LocalServer() as receiver:
        url = receiver.route("/r", handler=_status(code, headers))
        outcome = post(LOCAL.check(url), b"{}", secrets=[b"k"], seed=None, event="job.succeeded", delivery="d1", timeout=2)
        [(method, _, sent, body)] = receiver.requests
    assert (outcome.status_code, outcome.delivered, outcome.retryable, outcome.retry_after) == (
        code, delivered, retryable, retry_after)
    assert method == "POST" and body == b"{}" and sent["webhook-id"] == "d1"


def test_no_answer_is_retryable_and_names_no_url():
    outcome = post(LOCAL.check(f"http://127.0.0.1:{closed_port()}/x?token=secret"), b"{}", secrets=[b"k"],
                   seed=None, event="job.failed", delivery="d", timeout=1)
    assert outcome.status_code is None and outcome.retryable and "token" not in (outcome.error or "")


def test_standard_webhooks_signature_verifies_per_receiver(monkeypatch, capsys, redis_db_url, key_prefix):
    """The reference library verifies what a receiver gets with its own secret; another receiver's fails."""
    from standardwebhooks import Webhook, WebhookVerificationError

    from producer.cli import main as cli
    from producer.core.settings import get_settings

    body = '{"id":"j","title":"晨光"}'.encode()
    with LocalServer() as receiver:
        url = receiver.route("/hook", handler=_status(204))
        assert post(LOCAL.check(url), body, secrets=[receiver_secret(b"master", url)], seed=None, event="job.succeeded",
                    delivery="d7", timeout=2).delivered
        [(_, _, sent, got)] = receiver.requests
    own = receiver_secret_text(b"master", url)
    Webhook(own).verify(got, sent)
    assert sent["webhook-id"] == "d7" and sent["webhook-signature"].startswith("v1,")
    other = receiver_secret_text(b"master", "http://127.0.0.1:1/elsewhere")
    assert other != own and receiver_secret_text(b"master", url.replace("/hook", "/x")) == own  # per origin
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(got, sent)
    # What the receiver gets is verifiable with its own secret alone: no header is keyed with
    # the master secret (the deprecated X-Songqueue-Signature was, and is no longer sent).
    assert not any(name.lower().startswith("x-songqueue-") and name.lower() != "x-songqueue-event" for name in sent)
    master_signed = base64.b64encode(hmac.new(b"master", b"d7." + sent["webhook-timestamp"].encode() + b"." + got,
                                              hashlib.sha256).digest()).decode()
    assert all(master_signed not in value and value != "sha256=" + hmac.new(
        b"master", sent["webhook-timestamp"].encode() + b"." + got, hashlib.sha256).hexdigest()
        for value in sent.values())

    monkeypatch.setenv("SONGQUEUE_CALLBACK_SECRET", "master")
    monkeypatch.setenv("SONGQUEUE_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("SONGQUEUE_REDIS_URL", redis_db_url)
    monkeypatch.setenv("SONGQUEUE_KEY_PREFIX", key_prefix)
    get_settings.cache_clear()
    try:
        assert cli.main(["callback-secret", url]) == 0
        assert capsys.readouterr().out.strip() == own
        assert cli.main(["callback-secret", "ftp://x/"]) == 2
    finally:
        get_settings.cache_clear()


def test_event_names_are_checked_and_the_filter_decides() -> None:
    from producer.core.callbacks import EVENTS, check_events, wants
    from producer.core.models.job_record import JobRecord

    assert EVENTS == ("job.succeeded", "job.failed", "job.timed_out", "job.cancelled", "job.progress")
    assert check_events(["job.progress", "job.failed", "job.progress"]) == ["job.progress", "job.failed"]
    with pytest.raises(ValueError, match=r"callback_events: unknown event 'completed'"):
        check_events(["completed"])

    def job(**kw) -> JobRecord:
        return JobRecord(id="j", provider="udio", model="m", request={}, callback_url="https://x.test/h", **kw)

    assert wants(job(), "job.succeeded") and not wants(job(), "job.progress")
    assert wants(job(), "job.progress", progress_for_all=True) and wants(job(callback_progress=True), "job.progress")
    only = job(callback_events=["job.failed"])
    assert wants(only, "job.failed") and not wants(only, "job.succeeded")
    assert not wants(only, "job.progress", progress_for_all=True)  # the job's own list wins over the fleet setting
    assert wants(job(callback_events=["job.failed"], callback_progress=True), "job.progress")
    assert not wants(JobRecord(id="j", provider="udio", model="m", request={}), "job.succeeded")
