"""AsyncSongQueue against a real stack: the same job, seen and driven from asyncio."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from producer import AsyncSongQueue, JobState, Settings, UdioRequest

pytestmark = pytest.mark.integration


def test_async_submit_wait_list_cancel(make_stack):
    s = make_stack()
    s.start_worker()
    settings = Settings(**{k.removeprefix("SONGQUEUE_").lower(): v for k, v in s.env.items() if k.startswith("SONGQUEUE_")})

    async def scenario() -> None:
        queue = AsyncSongQueue(settings)
        try:
            seen: list[JobState] = []
            request = UdioRequest(prompt=f"async {uuid.uuid4().hex[:8]}")
            job = await queue.submit(request, idempotency_key="a1")
            # The same request again under its key: the first job (another request is refused).
            again = await queue.submit(request, idempotency_key="a1")
            assert again.id == job.id and not again.created
            done = await queue.wait(job.id, timeout=120, on_progress=lambda r: seen.append(r.state), interval=0.2)
            assert done.state == JobState.SUCCEEDED and seen[-1] == JobState.SUCCEEDED
            assert (await queue.view(job.id))["songs"][0]["audio"]["link"]
            assert [r.id for r in await queue.list(JobState.SUCCEEDED)] == [job.id]
            cancelled = await queue.cancel((await queue.submit(UdioRequest(prompt="to cancel"))).id)
            assert cancelled.state == JobState.CANCELLED
        finally:
            await queue.aclose()

    asyncio.run(scenario())
