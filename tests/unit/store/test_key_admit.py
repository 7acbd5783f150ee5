"""The edge's key check in a real Redis: one script reads the key's record, checks its scope
and takes a token of its rate (producer/api/key_caps.py admit, lua/key_admit.lua); a
secret's key id is remembered per process, a revocation still refused from the next request."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis

from producer.api import key_caps
from producer.core.settings import Settings
from producer.core.store import api_keys, keys
from producer.core.store.api_keys import KeyStore


def _settings(key_prefix: str, **overrides: object) -> Settings:
    return Settings(redis_url="redis://127.0.0.1:1/0", key_prefix=key_prefix, **overrides)


def _admit(store: KeyStore, settings: Settings, key_id: str, scope: str):  # type: ignore[no-untyped-def]
    """key_caps.admit as the edge awaits it, through an asyncio client of the same database."""
    where = store.redis.connection_pool.connection_kwargs

    async def admit():  # type: ignore[no-untyped-def]
        client = aioredis.Redis(host=where["host"], port=where["port"], db=where.get("db", 0))
        try:
            return await key_caps.admit(client, store, settings, key_id, scope)
        finally:
            await client.aclose()

    return asyncio.run(admit())


def test_a_live_key_with_the_scope_passes_and_takes_one_token(redis_client: redis.Redis, key_prefix: str) -> None:
    store = KeyStore(redis_client, key_prefix)
    key, _ = store.create("k", "t1", ["read"])
    admitted, refused = _admit(store, _settings(key_prefix), key.id, "read")
    assert admitted == key and refused is None
    # The fleet's default rate 50/s, burst 2 s: 100 tokens, one taken.
    assert float(redis_client.hget(keys.key_rate(key_prefix, key.id), "tokens")) == pytest.approx(99, abs=0.1)


def test_admin_holds_every_scope_and_a_missing_scope_is_a_403_that_takes_no_token(
        redis_client: redis.Redis, key_prefix: str) -> None:
    store = KeyStore(redis_client, key_prefix)
    reader, _ = store.create("reader", "t1", ["read"])
    admin, _ = store.create("admin", "t1", ["admin"])
    key, refused = _admit(store, _settings(key_prefix), reader.id, "submit")
    assert key == reader and refused is not None and refused.status == 403
    assert refused.detail == "this key lacks the 'submit' scope"
    assert not redis_client.exists(keys.key_rate(key_prefix, reader.id))
    assert _admit(store, _settings(key_prefix), admin.id, "submit") == (admin, None)


def test_unknown_and_revoked_keys_are_refused_and_take_no_token(redis_client: redis.Redis, key_prefix: str) -> None:
    store = KeyStore(redis_client, key_prefix)
    key, secret = store.create("k", "t1", ["read"])
    assert _admit(store, _settings(key_prefix), "nosuchkey", "read") == (None, None)
    assert store.key_id(secret) == key.id  # remembered from here on
    store.revoke(key.id)
    assert _admit(store, _settings(key_prefix), key.id, "read") == (None, None)
    assert store.authenticate(secret) is None  # the remembered id does not outlive the revocation
    assert not redis_client.exists(keys.key_rate(key_prefix, key.id))


def test_past_its_own_rate_a_key_gets_429_with_retry_after(redis_client: redis.Redis, key_prefix: str) -> None:
    store = KeyStore(redis_client, key_prefix)
    key, _ = store.create("slow", "t1", ["read"], request_rate=0.5)  # burst: max(1, 0.5 x 2) = 1 token
    settings = _settings(key_prefix, key_request_rate=1000.0)  # the key's own rate, not the fleet's, holds
    assert _admit(store, settings, key.id, "read") == (key, None)
    _, refused = _admit(store, settings, key.id, "read")
    assert refused is not None and refused.status == 429
    assert "over its request rate of 0.5/s" in refused.detail
    assert refused.headers["Retry-After"] == "2"  # (1 - ~0 tokens) / 0.5 per s, rounded up


def test_a_secrets_key_id_is_remembered_but_unknown_secrets_are_not(
        redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_keys, "KNOWN_SECRETS", 2)
    store = KeyStore(redis_client, key_prefix)
    made = [store.create(f"k{i}", "t1", ["read"]) for i in range(3)]
    calls: list[object] = []
    get = redis_client.get
    monkeypatch.setattr(redis_client, "get", lambda name: calls.append(name) or get(name))

    assert store.key_id(made[0][1]) == made[0][0].id and len(calls) == 1
    assert store.key_id(made[0][1]) == made[0][0].id and len(calls) == 1  # remembered: no Redis call
    # The edge's asyncio lookup shares what the process remembers.
    assert asyncio.run(store.key_id_async(None, made[0][1])) == made[0][0].id  # type: ignore[arg-type]
    for _ in range(2):
        assert store.key_id("sq_not-a-key") is None
    assert len(calls) == 3  # an unknown secret is asked every time
    assert store.key_id(made[1][1]) == made[1][0].id and store.key_id(made[2][1]) == made[2][0].id
    assert len(store._ids) == 2  # bounded: the oldest went
    calls.clear()
    assert store.key_id(made[0][1]) == made[0][0].id and len(calls) == 1
