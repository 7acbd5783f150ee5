"""HTTP API: requests per second and latency of GET /v1/jobs/{id} and POST /v1/jobs, against
the same calls made through SongQueue in-process (the baseline), and the API's memory.

One `songqueue api` process (uvicorn, one event loop, FastAPI's thread pool for the
blocking Redis and broker calls) on a private Redis that is also the broker. No workers:
a submit ends when the job is recorded and its task sent, the same work in both columns.
Clients: one sequential client (latency) and 4 client threads (throughput), a
`requests.Session` each (keep-alive); the baseline runs the same loops on SongQueue.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

from bench import harness
from bench.harness import Section, fmt, median, quantile
from producer.core.models.udio import UdioRequest
from producer.core.store.api_keys import KeyStore

THREADS = 4


def _timed(call: Callable[[int], None], n: int) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - start)
    return out


def _throughput(make: Callable[[], Callable[[int], None]], n: int) -> float:
    """Calls per second of THREADS clients making n calls between them."""
    calls = [make() for _ in range(THREADS)]
    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda t: [calls[t](i) for i in range(n // THREADS)], range(THREADS)))
    return (n // THREADS * THREADS) / (time.perf_counter() - start)


def run(quick: bool) -> Section:
    n = 200 if quick else 2000
    rows = []
    with harness.servers("http-api") as srv:
        env = srv.env()
        api_proc, url = harness.stack.start_api(env, srv.tmp / "api.log")
        try:
            queue = harness.producer(env)
            # Rate and queue caps out of the way: the bench measures the API, not a key's share.
            _, secret = KeyStore(queue.store.redis, queue.settings.key_prefix).create(
                "bench", "bench", ["submit", "read"], request_rate=1e6, max_queued=10**9)
            job_id = queue.submit(UdioRequest(prompt="bench"), tenant="bench").id

            def api_get() -> Callable[[int], None]:
                session = requests.Session()
                session.headers["Authorization"] = f"Bearer {secret}"
                return lambda i: session.get(f"{url}/v1/jobs/{job_id}", timeout=30).raise_for_status()

            def api_post() -> Callable[[int], None]:
                session = requests.Session()
                session.headers["Authorization"] = f"Bearer {secret}"
                body = {"provider": "udio", "request": {"prompt": "bench post"}}
                return lambda i: session.post(f"{url}/v1/jobs", json=body, timeout=30).raise_for_status()

            def sq_get() -> Callable[[int], None]:
                q = harness.producer(env)
                return lambda i: q.view(job_id) and None

            def sq_post() -> Callable[[int], None]:
                q = harness.producer(env)
                return lambda i: q.submit(UdioRequest(prompt="bench post"), tenant="bench") and None

            for label, make in (("GET job: SongQueue.view (baseline)", sq_get), ("GET /v1/jobs/{id}", api_get),
                                ("submit: SongQueue.submit (baseline)", sq_post), ("POST /v1/jobs", api_post)):
                one = make()
                one(0)  # warm: connections, imports
                lat = _timed(one, n)
                rows.append([label, fmt(len(lat) / sum(lat), 0), fmt(_throughput(make, n), 0),
                             fmt(median(lat) * 1000, 2), fmt(quantile(lat, 0.99) * 1000, 2)])
            rss = (harness._status_kib(api_proc.pid, "VmRSS") or 0) / 1024
            peak = (harness._status_kib(api_proc.pid, "VmHWM") or 0) / 1024
        finally:
            harness.stack.stop(api_proc)
    return Section(
        title="HTTP API",
        setup=(f"{n} calls per row, one sequential client and {THREADS} client threads; one `songqueue api` process "
               "(uvicorn) on a private Redis (also the broker), no workers; the baseline rows make the same calls "
               "through SongQueue in this process."),
        table=harness.table(["calls", "req/s (1 client)", f"req/s ({THREADS} threads)", "median ms", "p99 ms"], rows),
        notes=[f"API process memory after the run: RSS {fmt(rss, 0)} MiB (peak {fmt(peak, 0)} MiB).",
               "Each API call adds HTTP, key lookup (one Redis GET pair) and the JSON view to the in-process call."],
    )
