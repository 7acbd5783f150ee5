"""AsyncSongQueue: SongQueue's methods for asyncio services.

Reads (status, wait, list, view) go through redis.asyncio and never block the loop.
Writes (submit, cancel, retry) and the file work (fetch, upload_reference) run the
synchronous SongQueue in a worker thread: they are compare-and-set loops on the same job
store plus a Celery send, whose client is blocking; running the one implementation keeps
their rules (idempotency, fencing, the callback checks) in one place.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable
from pathlib import Path
from typing import Any

from producer.client.minimax_upload import Purpose
from producer.client.songqueue import JobHandle, JobNotFound, SongQueue, WaitTimeout
from producer.core.models.job_record import JobRecord, JobState, StoredObject
from producer.core.settings import Settings
from producer.core.store import keys, redis_client


class AsyncSongQueue:
    def __init__(self, settings: Settings | None = None) -> None:
        self.sync = SongQueue(settings)
        self.settings = self.sync.settings
        self.redis = redis_client.connect_async(self.settings.job_store_url, self.settings.sentinel_master,
                                                socket_timeout=30)

    async def aclose(self) -> None:
        await self.redis.aclose()

    async def submit(self, request: Any, **options: Any) -> JobHandle:
        """As SongQueue.submit (same arguments and errors)."""
        return await asyncio.to_thread(self.sync.submit, request, **options)

    async def upload_reference(self, path: str | Path, purpose: Purpose) -> str:
        return await asyncio.to_thread(self.sync.upload_reference, path, purpose)

    async def status(self, job_id: str) -> JobRecord:
        raw = await self.redis.get(keys.job(self.settings.key_prefix, job_id))
        if raw is None:
            raise JobNotFound(f"no job {job_id}")
        return JobRecord.model_validate_json(raw)

    async def wait(self, job_id: str, timeout: float | None = None,
                   on_progress: Callable[[JobRecord], None] | None = None, interval: float = 0.5) -> JobRecord:
        """Until the job is terminal; raises WaitTimeout past `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        seen = None
        while True:
            record = await self.status(job_id)
            if on_progress is not None and (record.state, record.progress) != seen:
                seen = (record.state, record.progress)
                on_progress(record)
            if record.state.terminal:
                return record
            if deadline is not None and loop.time() >= deadline:
                raise WaitTimeout(record)
            await asyncio.sleep(interval if deadline is None else max(0.0, min(interval, deadline - loop.time())))

    async def cancel(self, job_id: str) -> JobRecord:
        return await asyncio.to_thread(self.sync.cancel, job_id)

    async def retry(self, job_id: str) -> JobRecord:
        return await asyncio.to_thread(self.sync.retry, job_id)

    async def list(self, state: JobState | None = None, limit: int = 100) -> builtins.list[JobRecord]:
        prefix = self.settings.key_prefix
        index = keys.jobs_in_state(prefix, state.value) if state else keys.all_jobs(prefix)
        ids = [i.decode() for i in await self.redis.zrevrange(index, 0, limit - 1)]
        raws = await self.redis.mget([keys.job(prefix, i) for i in ids]) if ids else []
        return [JobRecord.model_validate_json(r) for r in raws if r is not None]

    def link(self, obj: StoredObject) -> str:
        """Local computation (a path, or a presigned URL signed without a request)."""
        return self.sync.link(obj)

    async def view(self, job_id: str) -> dict[str, Any]:
        return (await self.status(job_id)).public_view(link=self.link)

    async def fetch(self, job_id: str, to: Path | str) -> builtins.list[Path]:
        return await asyncio.to_thread(self.sync.fetch, job_id, to)
