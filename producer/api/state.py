"""What the API's routes share: the settings, the SongQueue client, the key store, and the job
store's Redis for asyncio (the edge's key check and the job reads, made in the event loop)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import redis.asyncio as aioredis
from fastapi import Request

from producer.api.notify_hook import Hooks
from producer.client.songqueue import SongQueue
from producer.core.settings import Settings
from producer.core.store import redis_client
from producer.core.store.api_keys import KeyStore

# The asyncio pool refuses a command past its size (MaxConnectionsError, a 500) rather than wait,
# and redis.asyncio's default is 100. A request holds at most one of its connections at a time
# and a process serves at most `limit_concurrency` (500, producer/api/server.py) at once, so
# this many never run out; idle ones stay pooled.
MAX_REDIS_CONNECTIONS = 512


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

    @cached_property
    def aredis(self) -> aioredis.Redis:
        """The job store's Redis for the event loop: made on first use, in the serving process
        (after `SONGQUEUE_API_WORKERS` forked), so no connection is shared between processes."""
        return redis_client.connect_async(self.settings.job_store_url, self.settings.sentinel_master,
                                          socket_timeout=30, health_check_interval=30,
                                          max_connections=MAX_REDIS_CONNECTIONS)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiState:
        queue = SongQueue(settings)
        return cls(settings, queue, KeyStore(queue.store.redis, settings.key_prefix))


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state
