"""Pick a provider by name (`provider=` on the job), built from settings.

Which providers exist, whether each is polled and which module speaks to it is said once
by the specs in `producer.core.models.providers`; each gateway module builds its own client
from settings (`from_settings`). Per-provider settings follow the `SONGQUEUE_{NAME}_*`
scheme, typed as `Settings.provider(name)`.
"""

from __future__ import annotations

import importlib

from producer.core.models.providers import provider_spec
from producer.core.settings import Settings
from workers.providers.base import AsyncProvider, SyncProvider

Provider = AsyncProvider | SyncProvider


def deadline_seconds(settings: Settings, provider: str) -> float:
    return settings.provider(provider).deadline


def call_price(settings: Settings, provider: Provider, model: str) -> float:
    """What one paid call costs: SONGQUEUE_{NAME}_PRICE_PER_CALL times the model's factor."""
    base = settings.provider(provider.name).price_per_call
    return base * provider.price_factors.get(model, 1.0)


def build(name: str, settings: Settings) -> Provider:
    """The client of provider `name`: polled (AsyncProvider) or not (SyncProvider) as its spec says.

    Raises producer.core.models.providers.UnknownProvider (a ValueError naming the choices)."""
    spec = provider_spec(name)
    provider: Provider = importlib.import_module(spec.gateway).from_settings(settings)
    if isinstance(provider, AsyncProvider) != spec.polled:
        raise TypeError(f"provider {name!r}: its spec says polled={spec.polled}, its client disagrees")
    return provider
