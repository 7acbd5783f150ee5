"""API keys: tenants, scopes and per-key limits, kept in Redis as hashes of the key only.

A key is shown once, when it is made (`songqueue keys create`); Redis holds its sha256, so
a copy of the database lets nobody call the API. Keys are 32 random bytes, so a plain
sha256 (no slow hash) is enough: there is nothing to guess.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
import redis.asyncio as aioredis

from producer.core.models.job_record import DEFAULT_TENANT
from producer.core.store.console_sessions import end_sessions, find_session

SCOPES = ("submit", "read", "admin")
_KEY_PREFIX = "sq_"
# KeyStore.key_id remembers this many secrets' key ids (the oldest forgotten first). A secret's
# id never changes (a revoked key keeps its record, marked), so remembering it cannot outlive a
# revocation: every request still reads the key's record.
KNOWN_SECRETS = 4096


@dataclass
class ApiKey:
    id: str
    name: str
    tenant: str = DEFAULT_TENANT
    scopes: list[str] = field(default_factory=lambda: ["read"])
    max_in_flight: int | None = None
    daily_budget: float | None = None
    # Its fair share of the API (producer/api/key_caps.py); None: the fleet's default
    # (SONGQUEUE_KEY_MAX_QUEUED, _KEY_REQUEST_RATE, _KEY_MAX_STREAMS).
    max_queued: int | None = None
    request_rate: float | None = None
    max_streams: int | None = None
    created_at: float = field(default_factory=time.time)
    revoked_at: float | None = None

    def allows(self, scope: str) -> bool:
        """admin implies every scope."""
        return scope in self.scopes or "admin" in self.scopes

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"scopes: must be a comma-separated list of {', '.join(SCOPES)}, got {','.join(scopes)!r}")
    return scopes


# A key's limits and the least each may be: (name, lowest, whole number).
LIMITS: dict[str, tuple[float, bool]] = {
    "max_in_flight": (1, True), "daily_budget": (0, False), "max_queued": (1, True),
    "request_rate": (0.001, False), "max_streams": (1, True),
}


def check_limits(limits: dict[str, float | None]) -> dict[str, float | int | None]:
    """The limits, checked against LIMITS (ValueError naming the first bad one)."""
    checked: dict[str, float | int | None] = {}
    for name, value in limits.items():
        if name not in LIMITS:
            raise ValueError(f"{name}: not a limit of a key (one of {', '.join(LIMITS)})")
        lowest, whole = LIMITS[name]
        if value is not None and value < lowest:
            raise ValueError(f"{name}: must be >= {lowest:g}")
        checked[name] = None if value is None else int(value) if whole else float(value)
    return checked


class KeyStore:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.redis = client
        self.prefix = prefix
        self._ids: dict[str, str] = {}  # sha256 of a secret -> its key id (known secrets only)
        self._ids_lock = threading.Lock()

    def record_key(self, key_id: str) -> str:
        """The Redis key of the key's record (producer/core/store/lua/key_admit.lua reads it)."""
        return self._record(key_id)

    def _record(self, key_id: str) -> str:
        return f"{self.prefix}:apikey:{key_id}"

    def _by_hash(self, digest: str) -> str:
        return f"{self.prefix}:apikey-hash:{digest}"

    def _index(self) -> str:
        return f"{self.prefix}:apikeys"

    def create(self, name: str, tenant: str | None, scopes: list[str], max_in_flight: float | None = None,
               daily_budget: float | None = None, **caps: float | None) -> tuple[ApiKey, str]:
        """A new key: (its record, the secret to hand over once).

        `tenant` None: a fresh tenant of the key's own (`key-<id>`), so a key made without
        thought shares nobody's jobs (tenant `default` holds every CLI, Python and playlist job).
        """
        if not name.strip():
            raise ValueError("name: must not be blank")
        key_id = secrets.token_hex(6)
        if tenant is None:
            tenant = f"key-{key_id}"
        if not tenant.strip() or ":" in tenant:
            raise ValueError("tenant: must be non-blank and contain no ':'")
        limits = check_limits({"max_in_flight": max_in_flight, "daily_budget": daily_budget, **caps})
        key = ApiKey(id=key_id, name=name, tenant=tenant, scopes=check_scopes(scopes), **limits)  # type: ignore[arg-type]
        secret = f"{_KEY_PREFIX}{secrets.token_urlsafe(32)}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._record(key.id), _dump(key))
        pipe.set(self._by_hash(_hash(secret)), key.id)
        pipe.zadd(self._index(), {key.id: key.created_at})
        pipe.execute()
        return key, secret

    def get(self, key_id: str) -> ApiKey | None:
        raw = self.redis.get(self._record(key_id))
        return load(raw) if raw else None

    def key_id(self, secret: str) -> str | None:
        """The id of the key with this secret, revoked or not; None for an unknown secret.

        Remembered per process once found (a secret's id never changes); an unknown secret is
        asked of Redis every time, so a caller cannot fill the memory with guesses.
        """
        digest = _hash(secret)
        known = self._ids.get(digest)
        return known if known is not None else self._remember(digest, self.redis.get(self._by_hash(digest)))

    async def key_id_async(self, client: aioredis.Redis, secret: str) -> str | None:
        """`key_id` through `client`, the same Redis for asyncio (the HTTP API's event loop)."""
        digest = _hash(secret)
        known = self._ids.get(digest)
        return known if known is not None else self._remember(digest, await client.get(self._by_hash(digest)))

    def _remember(self, digest: str, raw: bytes | None) -> str | None:
        if raw is None:
            return None
        with self._ids_lock:  # the API's thread pool calls this from many threads
            if len(self._ids) >= KNOWN_SECRETS:
                del self._ids[next(iter(self._ids))]  # the oldest
            self._ids[digest] = raw.decode()
        return raw.decode()

    def session_key_id(self, session_id: str) -> str | None:
        """The id of the key a live console session stands for, revoked or not; None for an ended session."""
        session = find_session(self.redis, self.prefix, session_id)
        return session.key_id if session is not None else None

    def authenticate(self, secret: str) -> ApiKey | None:
        """The live key with this secret; None for an unknown or revoked one."""
        key_id = self.key_id(secret)
        key = self.get(key_id) if key_id else None
        return key if key is not None and key.revoked_at is None else None

    def resume(self, session_id: str) -> ApiKey | None:
        """The live key a console session stands for; None for an ended session or a revoked key."""
        session = find_session(self.redis, self.prefix, session_id)
        key = self.get(session.key_id) if session is not None else None
        return key if key is not None and key.revoked_at is None else None

    def list(self) -> list[ApiKey]:
        ids = [i.decode() for i in self.redis.zrange(self._index(), 0, -1)]
        return [k for k in (self.get(i) for i in ids) if k is not None]

    def update(self, key_id: str, **limits: float | None) -> ApiKey | None:
        """Set the given limits of a key (the others stay); None when there is no such key."""
        checked = check_limits(limits)
        key = self.get(key_id)
        if key is None:
            return None
        for name, value in checked.items():
            setattr(key, name, value)
        self.redis.set(self._record(key.id), _dump(key))
        return key

    def revoke(self, key_id: str) -> ApiKey | None:
        key = self.get(key_id)
        if key is None:
            return None
        if key.revoked_at is None:
            key.revoked_at = time.time()
            self.redis.set(self._record(key.id), _dump(key))
        end_sessions(self.redis, self.prefix, key.id)  # its console sessions end with it
        return key


def _dump(key: ApiKey) -> str:
    return json.dumps(key.as_dict())


def load(raw: bytes | str) -> ApiKey:
    """A key from its record's JSON."""
    return ApiKey(**json.loads(raw))
