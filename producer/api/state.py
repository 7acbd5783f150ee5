"""What the API's routes share: the settings, the SongQueue client and the key store."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from producer.api.keys import KeyStore
from producer.client.songqueue import SongQueue
from producer.settings import Settings


@dataclass
class ApiState:
    settings: Settings
    queue: SongQueue
    keys: KeyStore
    # SSE: how often a job's record is read for changes.
    events_interval: float = 0.25

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiState:
        queue = SongQueue(settings)
        return cls(settings, queue, KeyStore(queue.store.redis, settings.key_prefix))


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state
