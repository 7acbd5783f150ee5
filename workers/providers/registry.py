"""Pick a provider by name (`provider=` on the job), built from settings.

Which providers exist, and whether each is polled, is said once by the specs in
`producer.models.providers`; this table only says how to build each one's client. Adding
a gateway is one module in this package plus its line in FACTORIES; per-provider settings
follow the `SONGQUEUE_{NAME}_*` scheme (`Settings.for_provider`).
"""

from __future__ import annotations

from collections.abc import Callable

from producer.models.providers import provider_spec
from producer.settings import Settings
from workers.providers.base import AsyncProvider, SyncProvider
from workers.providers.minimax import MiniMaxProvider
from workers.providers.udio import UdioProvider
from workers.upstream.http_client import new_session

Provider = AsyncProvider | SyncProvider


def _udio(settings: Settings) -> AsyncProvider:
    return UdioProvider(
        base_url=settings.udio_base_url,
        api_key=settings.udio_api_key,
        submit_path=settings.udio_submit_path,
        session=new_session(),
        timeout=settings.http_timeout,
        max_json_bytes=settings.max_json_bytes,
        notify_hook_url=settings.notify_hook_url,
        notify_field=settings.udio_notify_field,
    )


def _minimax(settings: Settings) -> SyncProvider:
    return MiniMaxProvider(
        base_url=settings.minimax_base_url,
        api_key=settings.minimax_api_key,
        session=new_session(),
        # The song comes back in the answer of this one call.
        timeout=settings.minimax_deadline,
        # Hex audio is twice the size of the audio, which may be up to the download cap.
        max_json_bytes=max(settings.max_json_bytes, 2 * settings.max_download_bytes + 64 * 1024),
    )


FACTORIES: dict[str, Callable[[Settings], Provider]] = {"udio": _udio, "minimax": _minimax}


def deadline_seconds(settings: Settings, provider: str) -> float:
    return float(getattr(settings, f"{provider}_deadline"))


def call_price(settings: Settings, provider: Provider, model: str) -> float:
    """What one paid call costs: SONGQUEUE_{NAME}_PRICE_PER_CALL times the model's factor."""
    base = float(getattr(settings, f"{provider.name}_price_per_call"))
    return base * provider.price_factors.get(model, 1.0)


def build(name: str, settings: Settings) -> Provider:
    """The client of provider `name`: polled (AsyncProvider) or not (SyncProvider) as its spec says.

    Raises producer.models.providers.UnknownProvider (a ValueError naming the choices)."""
    spec = provider_spec(name)
    provider = FACTORIES[spec.name](settings)
    if isinstance(provider, AsyncProvider) != spec.polled:
        raise TypeError(f"provider {name!r}: its spec says polled={spec.polled}, its client disagrees")
    return provider
