"""Pick a provider by name (`provider=` on the job), built from settings."""

from __future__ import annotations

from collections.abc import Callable

from producer.settings import Settings
from workers.http_client import new_session
from workers.providers.base import AsyncProvider
from workers.providers.udio import UdioProvider


def _udio(settings: Settings) -> AsyncProvider:
    return UdioProvider(
        base_url=settings.udio_base_url,
        api_key=settings.udio_api_key,
        submit_path=settings.udio_submit_path,
        session=new_session(),
        timeout=settings.http_timeout,
        max_json_bytes=settings.max_json_bytes,
    )


FACTORIES: dict[str, Callable[[Settings], AsyncProvider]] = {"udio": _udio}


def deadline_seconds(settings: Settings, provider: str) -> float:
    return float(getattr(settings, f"{provider}_deadline"))


def build(name: str, settings: Settings) -> AsyncProvider:
    try:
        factory = FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(sorted(FACTORIES))}") from None
    return factory(settings)
