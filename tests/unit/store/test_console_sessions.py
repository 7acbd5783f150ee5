"""Console sessions in a real Redis: the cookie's id maps to the key's id, never the key;
logout ends one session, revoking the key ends all of them, the per-key set keeps only live ids."""

from __future__ import annotations

import redis

from producer.core.store import keys
from producer.core.store.api_keys import KeyStore
from producer.core.store.console_sessions import close_session, find_session, open_session


def test_a_session_holds_the_key_id_and_expires(redis_client: redis.Redis, key_prefix: str) -> None:
    store = KeyStore(redis_client, key_prefix)
    key, secret = store.create("console", "t1", ["read"])
    session = open_session(redis_client, key_prefix, key.id, ttl=600)
    assert session.id != secret and secret not in str(redis_client.hgetall(keys.console_session(key_prefix, session.id)))
    assert store.resume(session.id) == key
    assert 0 < redis_client.pttl(keys.console_session(key_prefix, session.id)) <= 600_000
    assert store.resume("not-a-session") is None
    assert store.authenticate(session.id) is None  # a session id is no API key


def test_logout_ends_one_session_and_revocation_ends_all(redis_client: redis.Redis, key_prefix: str) -> None:
    store = KeyStore(redis_client, key_prefix)
    key, _ = store.create("console", "t1", ["read"])
    first, second, third = (open_session(redis_client, key_prefix, key.id, ttl=600) for _ in range(3))
    close_session(redis_client, key_prefix, first.id)
    assert find_session(redis_client, key_prefix, first.id) is None and store.resume(second.id) == key
    assert redis_client.smembers(keys.console_sessions_of_key(key_prefix, key.id)) == {second.id.encode(),
                                                                                       third.id.encode()}
    store.revoke(key.id)
    assert store.resume(second.id) is None and store.resume(third.id) is None
    assert not redis_client.exists(keys.console_session(key_prefix, second.id),
                                   keys.console_sessions_of_key(key_prefix, key.id))


def test_the_per_key_set_drops_sessions_that_expired(redis_client: redis.Redis, key_prefix: str) -> None:
    store = KeyStore(redis_client, key_prefix)
    key, _ = store.create("console", "t1", ["read"])
    old = open_session(redis_client, key_prefix, key.id, ttl=600)
    redis_client.delete(keys.console_session(key_prefix, old.id))  # what its expiry does
    new = open_session(redis_client, key_prefix, key.id, ttl=600)
    assert redis_client.smembers(keys.console_sessions_of_key(key_prefix, key.id)) == {new.id.encode()}
