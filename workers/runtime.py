"""Per-process singletons a task needs: settings, job store, storage, providers.

Built lazily, so each forked pool child opens its own connections.
"""

from __future__ import annotations

from functools import cache, lru_cache

from producer.settings import Settings, get_settings
from producer.store.job_store import JobStore
from workers.providers import registry
from workers.storage import Storage, open_storage


def settings() -> Settings:
    return get_settings()


@lru_cache(maxsize=1)
def store() -> JobStore:
    s = settings()
    return JobStore.from_url(s.job_store_url, s.key_prefix)


@lru_cache(maxsize=1)
def storage() -> Storage:
    return open_storage(settings())


@cache
def provider(name: str) -> registry.Provider:
    return registry.build(name, settings())
