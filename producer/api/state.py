"""What the API's routes share: the settings, the SongQueue client and the key store."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from fastapi import Request

from producer.api.notify_hook import Hooks
from producer.client.songqueue import SongQueue
from producer.core.settings import Settings
from producer.core.store.api_keys import KeyStore


@dataclass
class ApiState:
    settings: Settings
    queue: SongQueue
    keys: KeyStore
    # SSE: how often a job's record is read for changes.
    events_interval: float = 0.25
    # POST /v1/uploads: the largest reference file accepted (its body cap is this plus the form's overhead).
    max_upload_bytes: int = 20 << 20

    @cached_property
    def hooks(self) -> Hooks:
        return Hooks(self.settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiState:
        queue = SongQueue(settings)
        return cls(settings, queue, KeyStore(queue.store.redis, settings.key_prefix))


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state
