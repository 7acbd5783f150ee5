"""Every provider songqueue knows, described once: the producer and the workers read this table.

Adding a provider is a request model beside this module, one `ProviderSpec` line below,
and one module under `workers/providers/` (named by the spec's `gateway`; the workers
import it by that name and build it with its `from_settings`). Pydantic and the request models only: no celery, redis or
requests, so the CLI, the client, playlists, settings and workers can all import it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from producer.core.models.minimax import MiniMaxRequest
from producer.core.models.suno import SunoRequest
from producer.core.models.udio import UdioRequest

RequestModel = UdioRequest | MiniMaxRequest | SunoRequest


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    # Validates a job's request at the producer, before anything is enqueued or paid for.
    request_model: type[UdioRequest] | type[MiniMaxRequest] | type[SunoRequest]
    # The request field a caller's words go in: what playlists fill from `prompts` and what
    # a job is shown and searched by.
    text_field: str
    # The request field that picks the upstream model (`--model`, a playlist's `model`).
    model_field: str
    # Polled until it ends (asynchronous), or answers with the songs in one call.
    polled: bool
    # The module under workers/providers/ that speaks to the gateway: imported by name, so
    # the producer never loads worker code. It has `from_settings(settings) -> provider`.
    gateway: str
    # The request field that names the song to extend (`--extend`, `--extend-job`), if any.
    extend_field: str | None = None
    # The request field the caller's lyrics go in (`--lyrics`, `--lyrics-file`).
    lyrics_field: str = "lyrics"
    # The gateway calls the notify hook a submit names (SONGQUEUE_NOTIFY_HOOK_URL, signed per
    # job): so an uncertain submit can be reconciled from the hook (docs/callbacks-and-hooks.md).
    # Suno's relays drop the field and MiniMax answers at once: Udio's gateways only.
    notify_hook: bool = False
    # A call that costs nothing and checks the key: the fetch of a task that does not exist
    # (401/403: the key is refused; 404: accepted). None: the gateway has no such call.
    key_probe: str | None = None

    @property
    def default_model(self) -> str:
        """The model a request gets when it names none: the request model's own default."""
        return str(self.request_model.model_fields[self.model_field].default)

    def owns(self, field: str) -> bool:
        """Whether `field` is part of this provider's request."""
        return field in self.request_model.model_fields


PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec("udio", UdioRequest, text_field="prompt", model_field="model_type", polled=True,
                     gateway="workers.providers.udio", extend_field="config", notify_hook=True,
                     key_probe="/udio/fetch/{task_id}"),
        ProviderSpec("minimax", MiniMaxRequest, text_field="lyrics", model_field="model", polled=False,
                     gateway="workers.providers.minimax"),
        ProviderSpec("suno", SunoRequest, text_field="gpt_description_prompt", model_field="mv", polled=True,
                     gateway="workers.providers.suno", extend_field="continue_clip_id", lyrics_field="prompt",
                     key_probe="/suno/fetch/{task_id}"),
    )
}
DEFAULT_PROVIDER = "udio"
REQUEST_MODELS: tuple[type[BaseModel], ...] = tuple(spec.request_model for spec in PROVIDERS.values())
POLLED_PROVIDERS: tuple[str, ...] = tuple(name for name, spec in PROVIDERS.items() if spec.polled)


class UnknownProvider(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}")
        self.name = name


def provider_spec(name: str) -> ProviderSpec:
    """The spec of provider `name`; UnknownProvider (a ValueError naming the choices) otherwise."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(name) from None
