"""This worker's card (producer/core/fleet.py): published when it is ready, refreshed on
every watchdog tick, withdrawn when it stops; and a warning at start-up for each provider
it cannot serve, so a worker started without a key says so before its first job fails."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from producer.core import fleet
from producer.core.models.providers import PROVIDERS
from producer.core.settings import Settings

log = logging.getLogger("songqueue.fleet")

# The card of this process, built when the worker is ready; refreshed with a new seen_at.
_card: fleet.WorkerCard | None = None


def build(settings: Settings, worker: str, queues: list[str]) -> fleet.WorkerCard:
    return fleet.WorkerCard(
        worker=worker, version=fleet.version(), queues=sorted(queues), providers=fleet.providers_of(settings),
        storage=fleet.mask_url(settings.storage_url), broker=fleet.mask_url(settings.broker_url),
        redis=fleet.mask_url(settings.job_store_url), started_at=time.time(), pid=os.getpid(),
    )


def ttl(settings: Settings) -> float:
    """A card outlives two missed ticks, then the worker counts as gone."""
    return 3 * settings.watchdog_interval + settings.watchdog_grace


def ready(settings: Settings, sender: Any) -> None:
    """On worker_ready: build, warn, publish."""
    global _card
    worker = str(getattr(sender, "hostname", None) or f"worker@{os.uname().nodename}:{os.getpid()}")
    consumer = getattr(sender, "task_consumer", None)
    queues = [q.name for q in getattr(consumer, "queues", [])] if consumer is not None else []
    _card = build(settings, worker, queues)
    for name in _card.unservable():
        if _serves(name, queues):
            log.warning("provider %s cannot be served by this worker: %s is not set, so its jobs will fail "
                        "(set it in this worker's environment; `songqueue doctor` compares the fleet)",
                        name, settings.provider(name).env("api_key"))
    refresh()


def _serves(provider: str, queues: list[str]) -> bool:
    """A worker on the submit or poll queue calls every provider; one without them calls none."""
    return provider in PROVIDERS and (not queues or bool({"submit", "poll"} & set(queues)))


def refresh() -> None:
    """Publish the card again (a watchdog tick): it stays while the worker lives."""
    from workers import runtime

    if _card is None:
        return
    settings = runtime.settings()
    store = runtime.store()
    card = fleet.WorkerCard(**{**_card.__dict__, "seen_at": time.time()})
    fleet.publish(store.redis, settings.key_prefix, card, ttl(settings))


def stopping() -> None:
    from workers import runtime

    if _card is None:
        return
    try:
        fleet.withdraw(runtime.store().redis, runtime.settings().key_prefix, _card.worker)
    except Exception:  # noqa: BLE001 - a worker stopping with Redis down: the card expires by itself
        log.info("fleet: could not withdraw this worker's card; it expires on its own")
