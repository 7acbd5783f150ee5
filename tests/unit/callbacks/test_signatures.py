"""Signatures against the Standard Webhooks specification: its published test vector, several
signatures during a rotation's overlap, and the asymmetric `v1a` (ed25519) signature."""

from __future__ import annotations

import base64
import datetime as dt
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook, WebhookVerificationError

from producer.core.callbacks import (
    public_key_text,
    receiver_secret,
    receiver_secret_text,
    signature_header,
    signing_generations,
    standard_signature,
)
from producer.core.settings import Settings, describe_settings_error, signing_seed

# https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md (and its libraries' tests)
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SEED = bytes(range(32))
SIGNING_KEY = "whsk_" + base64.b64encode(SEED).decode()


def test_the_specifications_test_vector() -> None:
    secret = base64.b64decode(VECTOR_SECRET.removeprefix("whsec_"))
    ours = standard_signature(secret, VECTOR_ID, str(VECTOR_TIMESTAMP), VECTOR_BODY)
    assert ours == VECTOR_SIGNATURE
    # The reference library agrees (its sign() is what its verify() compares against).
    assert Webhook(VECTOR_SECRET).sign(VECTOR_ID, _at(VECTOR_TIMESTAMP), VECTOR_BODY.decode()) == ours


def _at(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _headers(signature: str, timestamp: str) -> dict[str, str]:
    return {"webhook-id": "msg_1", "webhook-timestamp": timestamp, "webhook-signature": signature}


def test_during_a_rotations_overlap_both_secrets_verify_and_after_it_only_the_new() -> None:
    url = "https://hooks.example.com/songqueue"
    now = time.time()
    assert signing_generations(0, None, 3600, now) == [0]
    assert signing_generations(2, now - 10, 3600, now) == [2, 1]
    assert signing_generations(2, now - 4000, 3600, now) == [2]
    old, new = receiver_secret_text(b"m", url, 0), receiver_secret_text(b"m", url, 1)
    assert old != new and receiver_secret_text(b"m", url) == old  # generation 0 is the secret from before rotation
    assert receiver_secret(b"m", url, 1) != receiver_secret(b"m", "https://hooks.example.com:443#1")  # no aliasing

    timestamp, body = str(int(now)), b'{"id":"j"}'
    both = signature_header([receiver_secret(b"m", url, g) for g in (1, 0)], None, "msg_1", timestamp, body)
    assert both.count("v1,") == 2 and both.startswith(standard_signature(receiver_secret(b"m", url, 1), "msg_1",
                                                                          timestamp, body))
    Webhook(new).verify(body, _headers(both, timestamp))
    Webhook(old).verify(body, _headers(both, timestamp))
    only_new = signature_header([receiver_secret(b"m", url, 1)], None, "msg_1", timestamp, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, _headers(only_new, timestamp))


def test_v1a_is_an_ed25519_signature_under_the_published_key() -> None:
    timestamp, body = str(int(time.time())), b'{"id":"j"}'
    header = signature_header([b"s"], SEED, "msg_1", timestamp, body)
    v1, v1a = header.split(" ")
    assert v1.startswith("v1,") and v1a.startswith("v1a,")
    public = public_key_text(signing_seed(SIGNING_KEY))
    assert public.startswith("whpk_")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_")))
    key.verify(base64.b64decode(v1a.removeprefix("v1a,")), b"msg_1." + timestamp.encode() + b"." + body)
    # The v1 libraries skip what they do not know: the HMAC still verifies beside it.
    Webhook("whsec_" + base64.b64encode(b"s").decode()).verify(body, _headers(header, timestamp))


@pytest.mark.parametrize("bad", ["notwhsk", "whsk_***", "whsk_" + base64.b64encode(b"short").decode()])
def test_a_bad_signing_key_names_the_setting_and_never_quotes_it(bad: str) -> None:
    with pytest.raises(Exception) as caught:
        Settings(redis_url="redis://unused", callback_signing_key=bad)
    told = describe_settings_error(caught.value)  # type: ignore[arg-type]
    assert "SONGQUEUE_CALLBACK_SIGNING_KEY" in told and bad not in told
