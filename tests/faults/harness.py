"""One fault row's songqueue: private Redis, real workers, storage, a callback receiver.

The sandbox gateway is shared by the rows (it counts submits per prompt, and every row's
prompts are unique); everything else is the row's own and stopped with it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import stack

from producer import JobState, Settings, SongQueue
from tests.support.http_fixture import LocalServer
from tests.support.ports import start_on_free_port

SANDBOX_KEY = "sk-faultREPORTkey0123456789abcdef"
CALLBACK_SECRET = "whsec-faultREPORT-3b9e"
PRICE = "0.25"


@dataclass(frozen=True)
class Gateway:
    """How a row reaches one provider (and dialect) of the sandbox, and how the sandbox counts
    the paid calls it took for one job."""

    name: str
    provider: str
    settings: dict[str, str]
    text_field: str  # the request field the sandbox reads directives from
    billed_by: str  # the sandbox stats table of paid calls, keyed by that text
    extra: dict[str, str] = field(default_factory=dict)
    polled: bool = True

    def request(self, text: str) -> dict[str, str]:
        return {self.text_field: text, **self.extra}


def _gateways(sandbox_url: str) -> dict[str, Gateway]:
    udio = {"UDIO_BASE_URL": sandbox_url, "UDIO_API_KEY": SANDBOX_KEY, "UDIO_PRICE_PER_CALL": PRICE}
    return {g.name: g for g in (
        Gateway("udio 302.ai", "udio", {**udio, "UDIO_SUBMIT_PATH": "/udio/generate-proxy"},
                "prompt", "submits_by_prompt"),
        Gateway("udio openai-hk", "udio", {**udio, "UDIO_SUBMIT_PATH": "/udio/submit/music"},
                "prompt", "submits_by_prompt"),
        # music-2.6 takes lyrics without an uploaded reference; the sandbox keys its
        # generations by "{prompt} {lyrics}" stripped, which is the lyrics here.
        Gateway("minimax", "minimax",
                {"MINIMAX_BASE_URL": sandbox_url, "MINIMAX_API_KEY": SANDBOX_KEY, "MINIMAX_PRICE_PER_CALL": PRICE,
                 # The one generation call is bounded by this: a submit killed mid-call is
                 # declared lost after it plus the grace, so keep it near the generation time.
                 "MINIMAX_DEADLINE": "10"},
                "lyrics", "generations_by_lyrics", {"model": "music-2.6"}, polled=False),
        Gateway("suno", "suno", {"SUNO_BASE_URL": sandbox_url, "SUNO_API_KEY": SANDBOX_KEY, "SUNO_PRICE_PER_CALL": PRICE},
                "gpt_description_prompt", "submits_by_prompt"),
    )}


GATEWAY_NAMES = ("udio 302.ai", "udio openai-hk", "minimax", "suno")


def gateway(name: str, sandbox_url: str) -> Gateway:
    return _gateways(sandbox_url)[name]


def _ok(handler: Any) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


@dataclass
class Harness:
    tmp: Path
    sandbox_url: str
    gateway: Gateway
    settings: dict[str, str]
    broker_url: str | None = None
    redis_proc: Any = None
    redis_url: str = ""
    workers: list = field(default_factory=list)
    appendfsync: str = "everysec"
    notes: list[str] = field(default_factory=list)  # what a disruption proved, for the report

    def __post_init__(self) -> None:
        self.prefix = f"f{uuid.uuid4().hex[:8]}"
        self.receiver = LocalServer()
        self.receiver.__enter__()
        self.callback_url = self.receiver.route("/callback", handler=_ok)
        self.redis_proc, self.redis_url = start_on_free_port(lambda port: self._start_redis(port))
        overrides = {
            "BROKER_URL": self.broker_url or self.redis_url,
            "REDIS_URL": self.redis_url,
            "KEY_PREFIX": self.prefix,
            "STORAGE_URL": self.storage.as_uri(),
            "ALLOW_PRIVATE_NETWORKS": "true",  # the sandbox and the receiver listen on 127.0.0.1
            "CALLBACK_SECRET": CALLBACK_SECRET,
            "CALLBACK_SCHEDULE": "0,0.3,0.6,1,1,1,1,1,1,1",  # ten deliveries within seconds
            **self.gateway.settings,
            **self.settings,
        }
        if "FAULT_POINT" in overrides:
            overrides["TEST_FAULTS"] = "1"  # the switch beside the crash point (workers/fault_points.py)
        self.env = stack.worker_env({f"SONGQUEUE_{k}": v for k, v in overrides.items()})
        # Test-only, read by the workers from the environment (not Settings fields).
        overrides.pop("FAULT_POINT", None)
        overrides.pop("TEST_FAULTS", None)
        if self.broker_url:
            purge_queues(self.broker_url)
        self.config = Settings(**{k.lower(): v for k, v in overrides.items()})
        self.queue = SongQueue(self.config)

    @property
    def storage(self) -> Path:
        return self.tmp / "objects"

    def _start_redis(self, port: int) -> tuple[Any, str]:
        proc, url = stack.start_redis(self.tmp / "redis", port)
        # stack's Redis runs the append-only file with Redis's default fsync (everysec).
        redis.Redis.from_url(url).config_set("appendfsync", self.appendfsync)
        return proc, url

    def submit(self, text: str) -> str:
        return self.queue.submit(self.gateway.request(text), provider=self.gateway.provider,
                                 callback_url=self.callback_url).id

    def start_worker(self, concurrency: int = 2) -> None:
        name = f"w{len(self.workers)}"
        self.workers.append(stack.start_worker(self.env, self.tmp / f"{name}.log", name=name, concurrency=concurrency))

    def kill_workers(self) -> None:
        for proc in self.workers:
            stack.kill(proc)

    def restart_redis(self, kill: bool = False) -> None:
        """Restart the row's Redis on its port and data dir: SIGTERM (it flushes the
        append-only file) or SIGKILL (what was not fsynced yet is lost)."""
        port = stack.redis_port(self.redis_url)
        if kill:
            self.redis_proc.kill()  # not stack.kill: this redis-server shares our process group
            self.redis_proc.wait(10)
        else:
            stack.stop(self.redis_proc)
        self.redis_proc, _ = self._start_redis(port)

    def states(self, ids: list[str]) -> list[JobState | None]:
        try:
            return [self.queue.store.get(i).state for i in ids]
        except redis.RedisError:
            return [None] * len(ids)

    def callbacks(self) -> list[dict[str, Any]]:
        """The callback bodies the receiver got (each a job's status)."""
        return [json.loads(body) for method, path, _, body in list(self.receiver.requests)
                if method == "POST" and path == "/callback"]

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.tmp.glob("*.log"))

    def stop(self) -> None:
        for proc in [*self.workers, self.redis_proc]:
            stack.stop(proc)
        self.receiver.close()


def purge_queues(url: str) -> None:
    from kombu import Connection

    from producer.core.task_names import ALL_QUEUES

    with Connection(url) as conn:
        channel = conn.default_channel
        for name in ALL_QUEUES:
            try:
                channel.queue_purge(name)
            except Exception:  # noqa: BLE001 - a queue that does not exist yet has nothing to purge
                channel = conn.channel()
