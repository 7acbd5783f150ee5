"""The per-job notify URL: made for Udio jobs only, signed per provider and job, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, urlsplit

import pytest

from producer.core import hook_link
from producer.core.settings import Settings

HOOK = "https://hooks.example.com/hooks/udio"


def _settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"notify_hook_url": HOOK, "callback_secret": "s3cret"}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_the_url_names_the_job_and_signs_provider_and_job() -> None:
    settings = _settings()
    url = hook_link.job_hook_url(settings, "udio", "job-1", 0)
    assert url.startswith(HOOK + "?")
    query = _query(url)
    key = hmac.new(b"s3cret", b"songqueue-notify-hook:", hashlib.sha256).digest()
    assert query == {"job": "job-1", "sig": hmac.new(key, b"udio\njob-1\n0", hashlib.sha256).hexdigest()}
    assert "s3cret" not in url
    assert hook_link.verify(settings, "udio", "job-1", 0, query["sig"])


def test_an_existing_query_is_kept() -> None:
    url = hook_link.job_hook_url(_settings(notify_hook_url=HOOK + "?tenant=a"), "udio", "j", 0)
    assert list(_query(url)) == ["tenant", "job", "sig"]


@pytest.mark.parametrize(("provider", "job", "sig_of"), [
    ("udio", "job-2", ("udio", "job-1")),       # another job's signature
    ("suno", "job-1", ("udio", "job-1")),       # another provider's
    ("udio", "job-1", None),                    # no signature at all
])
def test_signatures_of_something_else_are_refused(provider: str, job: str, sig_of: tuple[str, str] | None) -> None:
    settings = _settings()
    sig = hook_link.signature(settings, *sig_of, 0) if sig_of else ""
    assert not hook_link.verify(settings, provider, job, 0, sig)


def test_altered_and_odd_signatures_are_refused() -> None:
    settings = _settings()
    sig = hook_link.signature(settings, "udio", "job-1", 0)
    for bad in (sig[:-1] + ("0" if sig[-1] != "0" else "1"), sig[:32], sig + "00", "é" * 64, " "):
        assert not hook_link.verify(settings, "udio", "job-1", 0, bad)
    # Another secret signs differently: rotating it invalidates URLs still out there.
    assert not hook_link.verify(_settings(callback_secret="other"), "udio", "job-1", 0, sig)


def test_without_a_secret_the_bare_url_is_sent_and_nothing_verifies() -> None:
    settings = _settings(callback_secret="")
    assert hook_link.job_hook_url(settings, "udio", "job-1", 0) == HOOK
    assert not hook_link.signed(settings)
    assert not hook_link.verify(settings, "udio", "job-1", 0, hook_link.signature(settings, "udio", "job-1", 0))


def test_only_providers_whose_gateway_calls_hooks_get_one() -> None:
    settings = _settings()
    assert hook_link.job_hook_url(settings, "suno", "j", 0) == ""
    assert hook_link.job_hook_url(settings, "minimax", "j", 0) == ""
    assert hook_link.job_hook_url(_settings(notify_hook_url=""), "udio", "j", 0) == ""


def test_the_verifier_needs_no_hook_url() -> None:
    """`songqueue hooks` may run without knowing the URL the gateways reach it by."""
    sig = hook_link.signature(_settings(), "udio", "job-1", 0)
    assert hook_link.verify(_settings(notify_hook_url=""), "udio", "job-1", 0, sig)


def test_a_signature_binds_the_run() -> None:
    """A URL made for run 0 does not open run 1 (a replay): a late call for a replaced run is refused."""
    settings = _settings()
    sig = _query(hook_link.job_hook_url(settings, "udio", "job-1", 0))["sig"]
    assert hook_link.verify(settings, "udio", "job-1", 0, sig)
    assert not hook_link.verify(settings, "udio", "job-1", 1, sig)


def test_a_receivers_secret_signs_no_notify_hook() -> None:
    """What a callback receiver holds (its own secret) cannot make a notify URL that verifies."""
    from producer.core.callbacks import receiver_secret

    settings = _settings()
    held = receiver_secret(b"s3cret", "https://receiver.example/cb")
    for forged_key in (held, hmac.new(held, b"songqueue-notify-hook:", hashlib.sha256).digest()):
        forged = hmac.new(forged_key, b"udio\njob-1\n0", hashlib.sha256).hexdigest()
        assert not hook_link.verify(settings, "udio", "job-1", 0, forged)
    # and the receiver's key is not the hook's, under any label
    assert hook_link._key(settings) != held
