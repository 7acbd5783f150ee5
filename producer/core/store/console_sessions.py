"""Console sessions: a random id in the browser's cookie, the key it stands for in Redis.

The cookie never holds the API key: it holds a session id (`secrets.token_urlsafe`), and
Redis maps it to the key's id and the session's CSRF token for SONGQUEUE_CONSOLE_SESSION_TTL
seconds. Logging out deletes the session; revoking the key deletes every session of it (the
per-key set), and even a session missed there dies with its key, since each use reads the
key's record (`KeyStore.resume`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis

from producer.core.store import keys


@dataclass(frozen=True)
class ConsoleSession:
    id: str
    key_id: str
    csrf: str  # the token every state-changing form of this session carries


def open_session(client: redis.Redis, prefix: str, key_id: str, ttl: float) -> ConsoleSession:
    """A new session of `key_id` that ends after `ttl` seconds."""
    session = ConsoleSession(secrets.token_urlsafe(32), key_id, secrets.token_urlsafe(32))
    ms = max(1, int(ttl * 1000))
    index = keys.console_sessions_of_key(prefix, key_id)
    live = [m for m in client.smembers(index) if client.exists(keys.console_session(prefix, m.decode()))]
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.console_session(prefix, session.id), mapping={"key_id": key_id, "csrf": session.csrf})
    pipe.pexpire(keys.console_session(prefix, session.id), ms)
    # Rewritten with the live members only, so the set never outgrows the key's open sessions.
    pipe.delete(index)
    pipe.sadd(index, session.id, *live)
    pipe.pexpire(index, ms)  # every session lives `ttl`, so the newest (this one) ends last
    pipe.execute()
    return session


def find_session(client: redis.Redis, prefix: str, session_id: str) -> ConsoleSession | None:
    fields = client.hgetall(keys.console_session(prefix, session_id))
    if not fields:
        return None
    return ConsoleSession(session_id, fields[b"key_id"].decode(), fields[b"csrf"].decode())


def close_session(client: redis.Redis, prefix: str, session_id: str) -> None:
    """Log out: the session is gone, its cookie opens nothing."""
    session = find_session(client, prefix, session_id)
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.console_session(prefix, session_id))
    if session is not None:
        pipe.srem(keys.console_sessions_of_key(prefix, session.key_id), session_id)
    pipe.execute()


def end_sessions(client: redis.Redis, prefix: str, key_id: str) -> int:
    """Every console session of the key ends (it was revoked); how many there were."""
    index = keys.console_sessions_of_key(prefix, key_id)
    ids = [m.decode() for m in client.smembers(index)]
    pipe = client.pipeline(transaction=True)
    for session_id in ids:
        pipe.delete(keys.console_session(prefix, session_id))
    pipe.delete(index)
    return sum(pipe.execute()[:-1])
