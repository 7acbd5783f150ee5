"""HTTP API: requests per second and latency of GET /v1/jobs/{id} and POST /v1/jobs, against
the same calls made through SongQueue in-process (the baseline), the API's CPU per call and
its memory.

One `songqueue api` process (uvicorn, one event loop, FastAPI's thread pool for the
blocking Redis and broker calls) on a private Redis that is also the broker. No workers:
a submit ends when the job is recorded and its task sent, the same work in both columns.
Clients: one sequential client (latency) and 4 client threads (throughput), a
`requests.Session` each (keep-alive); the baseline runs the same loops on SongQueue.
The Python client costs about as much CPU as the server on a 2-core machine, so the same
calls are also driven by `wrk` (C; `make wrk`; its rows are skipped with a note without it):
4 threads, 4 keep-alive connections, the header and body from a Lua script, against one API
process and against `SONGQUEUE_API_WORKERS=2`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench import harness
from bench.harness import Section, fmt, median, quantile
from producer.core.models.udio import UdioRequest
from producer.core.store.api_keys import KeyStore

THREADS = 4
WARM_SECONDS = 1
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _wrk_script(path: Path, secret: str, method: str, body: str = "") -> Path:
    lines = [f'wrk.method = "{method}"', f'wrk.headers["Authorization"] = "Bearer {secret}"']
    if body:
        lines += ['wrk.headers["Content-Type"] = "application/json"', f"wrk.body = [[{body}]]"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _wrk(url: str, script: Path, seconds: int) -> tuple[int, float, float, float, int]:
    """wrk -t4 -c4 --latency for `seconds`: (requests, req/s, median ms, p99 ms, answers other than 2xx/3xx)."""
    out = subprocess.run(["wrk", f"-t{THREADS}", f"-c{THREADS}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> tuple[int, float, float, float, int]:
    """What `wrk --latency` printed: (requests, req/s, median ms, p99 ms, answers other than 2xx/3xx)."""
    rate = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    quantiles = dict(re.findall(r"^\s+(50|99)%\s+([0-9.]+(?:us|ms|s))\s*$", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if rate is None or count is None or set(quantiles) != {"50", "99"}:
        raise RuntimeError(f"wrk printed no rate or latency distribution:\n{out}")

    def ms(text: str) -> float:
        number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(number) * _UNITS[unit]

    return (int(count.group(1)), float(rate.group(1)), ms(quantiles["50"]), ms(quantiles["99"]),
            int(bad.group(1)) if bad else 0)


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
    wrk_seconds = 3 if quick else 10
    wrk = shutil.which("wrk")
    rows = []
    notes = []
    with harness.servers("http-api") as srv:
        env = srv.env()
        api_proc, url = harness.stack.start_api(env, srv.tmp / "api.log")
        try:
            queue = harness.producer(env)
            # Rate and queue caps out of the way: the bench measures the API, not a key's share.
            _, secret = KeyStore(queue.store.redis, queue.settings.key_prefix).create(
                "bench", "bench", ["submit", "read"], request_rate=1e6, max_queued=10**9)
            job_id = queue.submit(UdioRequest(prompt="bench"), tenant="bench").id
            post_body = '{"provider": "udio", "request": {"prompt": "bench post"}}'

            def api_get() -> Callable[[int], None]:
                session = requests.Session()
                session.headers["Authorization"] = f"Bearer {secret}"
                return lambda i: session.get(f"{url}/v1/jobs/{job_id}", timeout=30).raise_for_status()

            def api_post() -> Callable[[int], None]:
                session = requests.Session()
                session.headers["Authorization"] = f"Bearer {secret}"
                session.headers["Content-Type"] = "application/json"
                return lambda i: session.post(f"{url}/v1/jobs", data=post_body, timeout=30).raise_for_status()

            def sq_get() -> Callable[[int], None]:
                q = harness.producer(env)
                return lambda i: q.view(job_id) and None

            def sq_post() -> Callable[[int], None]:
                q = harness.producer(env)
                return lambda i: q.submit(UdioRequest(prompt="bench post"), tenant="bench") and None

            for label, make, api in (("GET job: SongQueue.view (baseline)", sq_get, False),
                                     ("GET /v1/jobs/{id}", api_get, True),
                                     ("submit: SongQueue.submit (baseline)", sq_post, False),
                                     ("POST /v1/jobs", api_post, True)):
                one = make()
                one(0)  # warm: connections, imports
                lat = _timed(one, n)
                cpu_before = harness.cpu_seconds(api_proc.pid)
                rate = _throughput(make, n)
                cpu = (harness.cpu_seconds(api_proc.pid) - cpu_before) / (n // THREADS * THREADS) * 1000
                rows.append([label, fmt(len(lat) / sum(lat), 0), fmt(rate, 0), fmt(median(lat) * 1000, 2),
                             fmt(quantile(lat, 0.99) * 1000, 2), fmt(cpu, 2) if api else "-"])
            rss = (harness._status_kib(api_proc.pid, "VmRSS") or 0) / 1024
            peak = (harness._status_kib(api_proc.pid, "VmHWM") or 0) / 1024
            if wrk:
                scripts = {"GET /v1/jobs/{id}": (_wrk_script(srv.tmp / "get.lua", secret, "GET"), f"{url}/v1/jobs/{job_id}"),
                           "POST /v1/jobs": (_wrk_script(srv.tmp / "post.lua", secret, "POST", post_body), f"{url}/v1/jobs")}
                rows += _wrk_rows(api_proc.pid, scripts, wrk_seconds, "1 process")
        finally:
            harness.stack.stop(api_proc)
        if wrk:
            api_proc, url2 = harness.stack.start_api({**env, "SONGQUEUE_API_WORKERS": "2"}, srv.tmp / "api-2.log")
            try:
                scripts = {label: (script, target.replace(url, url2)) for label, (script, target) in scripts.items()}
                rows += _wrk_rows(api_proc.pid, scripts, wrk_seconds, "`SONGQUEUE_API_WORKERS=2`")
            finally:
                harness.stack.stop(api_proc)
            notes.append(f"wrk rows: `wrk -t{THREADS} -c{THREADS} -d{wrk_seconds}s --latency` after {WARM_SECONDS} s of "
                         "the same calls not counted (a Lua script sets the "
                         "Authorization header and the POST body); req/s is wrk's Requests/sec, median and p99 its "
                         "latency distribution, API CPU ms/call the API processes' CPU seconds during the run / wrk's "
                         "requests x 1000; no row had an answer other than 2xx.")
        else:
            notes.append("wrk rows skipped: `wrk` is not installed (`make wrk`).")
    return Section(
        title="HTTP API",
        setup=(f"{n} calls per row, one sequential client and {THREADS} client threads; one `songqueue api` process "
               "(uvicorn) on a private Redis (also the broker), no workers; the baseline rows make the same calls "
               "through SongQueue in this process. The wrk rows drive the same calls from C, so the Python "
               "client's own CPU does not cap them."),
        table=harness.table(["calls", "req/s (1 client)", f"req/s ({THREADS} threads)", "median ms", "p99 ms",
                             "API CPU ms/call"], rows),
        notes=[f"API process memory after the run: RSS {fmt(rss, 0)} MiB (peak {fmt(peak, 0)} MiB).",
               f"API CPU ms/call = the API processes' CPU seconds (user + system, /proc) during the {THREADS}-thread "
               "loop / its calls x 1000: less sensitive to a busy machine than req/s.",
               "Each API call adds HTTP, the key check (one Redis script: record, scope, rate; the secret's key id "
               "is remembered) and the JSON view to the in-process call.", *notes],
    )


def _wrk_rows(pid: int, scripts: dict[str, tuple[Path, str]], seconds: int, what: str) -> list[list[str]]:
    rows = []
    for label, (script, target) in scripts.items():
        # Not counted: the same calls for WARM_SECONDS first, so a process's first calls (its broker
        # connection, Celery's task registry, a thread pool growing) are not read as its latency tail.
        _wrk(target, script, WARM_SECONDS)
        cpu_before = harness.cpu_seconds(pid)
        count, rate, mid, p99, bad = _wrk(target, script, seconds)
        if bad:
            raise RuntimeError(f"wrk {label}: {bad} answers other than 2xx/3xx")
        cpu = (harness.cpu_seconds(pid) - cpu_before) / count * 1000
        rows.append([f"{label} (wrk, {what})", "-", fmt(rate, 0), fmt(mid, 2), fmt(p99, 2), fmt(cpu, 2)])
    return rows
