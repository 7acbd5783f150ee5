"""Per-process singletons a task needs: settings, job store, storage, providers.

Built lazily, so each forked pool child opens its own connections.
"""

from __future__ import annotations

from functools import cache, lru_cache

from producer.core.settings import Settings, get_settings
from producer.core.store import parking
from producer.core.store.job_store import JobStore
from workers.providers import registry
from workers.providers.base import AsyncProvider
from workers.storage import Storage, open_storage


def settings() -> Settings:
    return get_settings()


@lru_cache(maxsize=1)
def store() -> JobStore:
    s = settings()
    job_store = JobStore.from_url(s.job_store_url, s.key_prefix, s.job_retention, s.sentinel_master)
    # Imported here: the Celery app's module imports this one.
    from workers.celery_app import app
    job_store.waker = parking.waker(app)  # a place freed wakes a parked job (producer/core/store/parking.py)
    return job_store


@lru_cache(maxsize=1)
def storage() -> Storage:
    return open_storage(settings())


@cache
def provider(name: str) -> registry.Provider:
    return registry.build(name, settings())


def polled_provider(name: str) -> AsyncProvider:
    """The provider of a job that is polled; a synchronous one here is a bug, said plainly."""
    found = provider(name)
    if not isinstance(found, AsyncProvider):
        raise TypeError(f"provider {name!r} answers at once; it has nothing to poll")
    return found
