"""An idempotency key means one request: the same request again gets the first job, a
different one under the same key is refused, naming the key (Enqueuer.create -> JobStore.create)."""

from __future__ import annotations

import pytest

from producer.core.enqueue import Enqueuer
from producer.core.request_fingerprint import IdempotencyConflict
from producer.core.settings import Settings


@pytest.fixture
def enqueuer(redis_db_url: str, key_prefix: str) -> Enqueuer:
    return Enqueuer(Settings(redis_url=redis_db_url, broker_url=redis_db_url, key_prefix=key_prefix))


def test_the_same_request_again_gets_the_first_job(enqueuer: Enqueuer) -> None:
    first, created = enqueuer.create({"prompt": "a song about rain"}, idempotency_key="order-1")
    again, created_again = enqueuer.create({"prompt": "a song about rain"}, idempotency_key="order-1")
    assert created and not created_again and again.id == first.id


@pytest.mark.parametrize("change", [
    {"request": {"prompt": "a song about snow"}},
    {"callback_url": "https://hooks.example.com/cb"},
    {"album": "winter"},
    {"provider": "suno", "request": {"prompt": "a song about rain"}},
])
def test_another_request_under_a_used_key_is_refused(enqueuer: Enqueuer, change: dict) -> None:
    first, _ = enqueuer.create({"prompt": "a song about rain"}, idempotency_key="order-2")
    options = {k: v for k, v in change.items() if k != "request"}
    with pytest.raises(IdempotencyConflict) as refused:
        enqueuer.create(change.get("request", {"prompt": "a song about rain"}), idempotency_key="order-2", **options)
    assert "'order-2'" in str(refused.value) and "another request" in str(refused.value)
    assert enqueuer.store.get(first.id) is not None and len(enqueuer.store.ids()) == 1  # nothing new stored


def test_keys_are_per_tenant(enqueuer: Enqueuer) -> None:
    a, _ = enqueuer.create({"prompt": "one"}, idempotency_key="k", tenant="a")
    b, created = enqueuer.create({"prompt": "two"}, idempotency_key="k", tenant="b")
    assert created and a.id != b.id
