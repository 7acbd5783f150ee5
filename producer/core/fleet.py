"""What each worker runs with, published where `songqueue doctor` and the metrics can read it.

`doctor` used to read the shell it ran in: a worker started without
SONGQUEUE_SUNO_API_KEY failed every Suno job with 401 while `doctor` said Suno was fine. So
each worker publishes a card at start and on every watchdog tick: its version, queues, the
providers it can serve (with a fingerprint of each key, never the key), storage and broker
(passwords masked). A card expires unless refreshed, so the cards present are the workers
alive (`songqueue_worker_up`). Readers compare cards with each other and with their own
settings (producer/doctor/fleet_checks.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit, urlunsplit

import redis

from producer.core.models.providers import PROVIDERS
from producer.core.settings import Settings

# Fingerprints are an HMAC under this fixed label, not a bare hash of the key, so a card
# is no lookup table of the hashes of keys that leaked elsewhere; 12 hex digits tell keys apart.
_FINGERPRINT_LABEL = b"songqueue provider key fingerprint v1"


def version() -> str:
    """The installed songqueue's version: what a card and the metrics report."""
    import importlib.metadata

    try:
        return importlib.metadata.version("songqueue")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def fingerprint(secret: str) -> str | None:
    """A short, stable fingerprint of a key (None for no key): equal keys, equal prints."""
    if not secret:
        return None
    return hmac.new(_FINGERPRINT_LABEL, secret.encode(), hashlib.sha256).hexdigest()[:12]


def mask_url(url: str) -> str:
    """A URL with its password (redis://:pw@host, amqp://user:pw@host) replaced by ****.

    A list of URLs joined by ';' (kombu's sentinel://h1;sentinel://h2 form) is masked part by part."""
    if ";" in url:
        return ";".join(mask_url(part) for part in url.split(";"))
    if url.startswith("redis-cluster://"):  # several HOST:PORT, which urlsplit cannot read
        head, at, nodes = url[len("redis-cluster://"):].rpartition("@")
        user, colon, _ = head.partition(":")
        return f"redis-cluster://{user}:****@{nodes}" if at and colon else url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:****@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class ProviderCard:
    base_url: str
    key: str | None  # the key's fingerprint; None when the worker has no key for it


@dataclass(frozen=True)
class WorkerCard:
    worker: str  # Celery's hostname, e.g. celery@host
    version: str
    queues: list[str]
    providers: dict[str, ProviderCard]
    storage: str
    broker: str
    redis: str
    started_at: float
    seen_at: float = 0.0
    pid: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def unservable(self) -> list[str]:
        """The providers this worker cannot call: no key."""
        return sorted(name for name, card in self.providers.items() if card.key is None)


def providers_of(settings: Settings) -> dict[str, ProviderCard]:
    return {name: ProviderCard(settings.provider(name).base_url,
                               fingerprint(settings.provider(name).api_key.get_secret_value()))
            for name in PROVIDERS}


def card_key(prefix: str, worker: str) -> str:
    return f"{prefix}:fleet:{worker}"


def publish(client: redis.Redis, prefix: str, card: WorkerCard, ttl: float) -> None:
    """Write (or refresh) the card; it expires `ttl` seconds later unless published again."""
    client.set(card_key(prefix, card.worker), json.dumps(asdict(card)), px=max(1, int(ttl * 1000)))


def withdraw(client: redis.Redis, prefix: str, worker: str) -> None:
    client.delete(card_key(prefix, worker))


def read_all(client: redis.Redis, prefix: str) -> list[WorkerCard]:
    """Every live worker's card, by worker name."""
    cards = []
    for key in sorted(client.scan_iter(match=card_key(prefix, "*"), count=200)):
        raw = client.get(key)
        if raw is None:
            continue  # expired between the scan and the read
        data = json.loads(raw)
        data["providers"] = {name: ProviderCard(**p) for name, p in data.get("providers", {}).items()}
        cards.append(WorkerCard(**data))
    return cards
