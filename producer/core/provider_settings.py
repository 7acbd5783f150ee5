"""The settings of one provider, typed: what `Settings.provider(name)` returns.

Every provider has the same core (`ProviderSettings`): its gateway, key, deadline, price,
shared limits and daily budget. A polled provider adds its fetch rate and its own poll
schedule (`PolledProviderSettings`); one that fetches many tasks in one call adds the batch
knobs (`BatchPolledProviderSettings`); each provider class adds what only it has.

The values come from `SONGQUEUE_{NAME}_{FIELD}` variables: `Settings` reads them as flat
fields (`udio_api_key` is `SONGQUEUE_UDIO_API_KEY`; their rules and descriptions are there)
and builds these objects from them, so field `api_key` of `UdioSettings` is the flat field
`udio_api_key`. `flat_fields()` is that mapping; the settings module checks at import that
every `{name}_*` field of `Settings` belongs to exactly one provider field and back.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

__all__ = ["PROVIDER_SETTINGS", "BatchPolledProviderSettings", "MiniMaxSettings", "PolledProviderSettings",
           "ProviderSettings", "SunoSettings", "UdioSettings", "flat_fields"]


class ProviderSettings(BaseModel):
    """What every provider has."""

    model_config = ConfigDict(frozen=True)
    # The provider's name, as in producer.core.models.providers.PROVIDERS.
    name: ClassVar[str]

    base_url: str
    api_key: SecretStr
    deadline: float
    price_per_call: float
    max_in_flight: int | None
    submit_rate: float | None
    daily_budget: float | None

    def call_rate(self, call: str) -> float | None:
        """Calls per second of `call` ("submit" or "poll") across all workers; None = unlimited."""
        return self.submit_rate if call == "submit" else None

    def env(self, field: str) -> str:
        """The variable of one of this provider's fields: env("api_key") = SONGQUEUE_UDIO_API_KEY."""
        if field not in type(self).model_fields:
            raise KeyError(f"provider {self.name!r} has no setting {field!r}")
        return f"SONGQUEUE_{self.name.upper()}_{field.upper()}"


class PolledProviderSettings(ProviderSettings):
    """A provider polled until its task ends: a fetch rate and its own poll schedule."""

    poll_rate: float | None
    # Unset: the global SONGQUEUE_POLL_* value (Settings.poll_schedule).
    poll_initial_delay: float | None
    poll_min_interval: float | None
    poll_max_interval: float | None

    def call_rate(self, call: str) -> float | None:
        return self.poll_rate if call == "poll" else super().call_rate(call)


class BatchPolledProviderSettings(PolledProviderSettings):
    """A polled provider that fetches many tasks in one call."""

    poll_batch_size: int
    max_absences: int
    poll_batch_window: float


class UdioSettings(PolledProviderSettings):
    name: ClassVar[str] = "udio"

    submit_path: str
    notify_field: str


class MiniMaxSettings(ProviderSettings):
    name: ClassVar[str] = "minimax"

    generate_path: str


class SunoSettings(BatchPolledProviderSettings):
    name: ClassVar[str] = "suno"

    submit_path: str


PROVIDER_SETTINGS: dict[str, type[ProviderSettings]] = {
    cls.name: cls for cls in (UdioSettings, MiniMaxSettings, SunoSettings)
}


def flat_fields(name: str) -> dict[str, str]:
    """Provider `name`'s fields, each with the flat `Settings` field it is read from."""
    return {field: f"{name}_{field}" for field in PROVIDER_SETTINGS[name].model_fields}
