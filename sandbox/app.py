"""The state one sandbox instance owns, behind one lock.

A single RLock guards the task table, the stats, the config, the random
generator and the per-prompt counters: contention is irrelevant at sandbox
scale, and one lock cannot deadlock against another.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from typing import Any

from sandbox.config import SandboxConfig
from sandbox.faults import Directives, parse_directives
from sandbox.hooks import HookNotifier
from sandbox.profiles import PROFILES
from sandbox.stats import Stats
from sandbox.tasks import TaskTable


class Sandbox:
    def __init__(
        self,
        config: SandboxConfig,
        api_key: str,
        public_url: str = "",
        log_size: int = 2000,
    ) -> None:
        self.lock = threading.RLock()
        self.config = config
        self._initial_config = dataclasses.replace(config)
        self.api_key = api_key
        self.public_url = public_url.rstrip("/")
        self.tasks = TaskTable(self.lock)
        self.stats = Stats(self.lock, log_size)
        self.hooks = HookNotifier(self)
        self.rng = random.Random(config.seed)
        # Submit faults are keyed by prompt: before a task exists there is
        # nothing else that identifies "the same request again".
        self._submits_seen: dict[str, int] = {}
        # MiniMax: reference id -> "voice_id"/"instrumental_id" issued by the upload
        # endpoint, and audio id -> song duration of the answers given as a URL.
        self.minimax_references: dict[str, str] = {}
        self.minimax_audio: dict[str, float] = {}

    def authorized(self, headers: dict[str, str]) -> bool:
        """``Bearer <key>`` only: the vendors document the scheme, and a bare key is refused."""
        value = headers.get("authorization", "").strip()
        if value[:7].lower() != "bearer ":
            return False
        return value[7:].strip() == self.api_key

    def directives_for(self, text: str, provider: str) -> Directives:
        """The directives of a submit's text, plus the manners the profile draws for it."""
        with self.lock:
            profile, seed = PROFILES.get(self.config.profile), self.config.seed
        if profile is None:
            return parse_directives(text)
        manners = profile.draw(seed, provider, text)
        self.stats.drawn(text, [m.name for m in manners])
        return parse_directives(" ".join([text, *(m.directives for m in manners)]))

    def next_submit(self, prompt: str) -> int:
        """Count a submit of ``prompt``; return how many came before it."""
        with self.lock:
            seen = self._submits_seen.get(prompt, 0)
            self._submits_seen[prompt] = seen + 1
            return seen

    def chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self.lock:
            return self.rng.random() < rate

    def config_snapshot(self) -> dict[str, Any]:
        with self.lock:
            return self.config.as_dict()

    def update_config(self, changes: Any) -> dict[str, Any]:
        clean = self.config.validated_changes(changes)
        profile = PROFILES.get(clean.get("profile") or "")
        if profile is not None:  # a profile sets its knobs, unless the same change sets them
            clean = {**self.config.validated_changes(dict(profile.knobs)), **clean}
        with self.lock:
            self.config.apply(clean)
            if "seed" in clean:
                self.rng.seed(clean["seed"])
            return self.config.as_dict()

    def reset(self, config: bool = False) -> None:
        with self.lock:
            self.tasks.clear()
            self.hooks.clear()
            self.stats.reset()
            self._submits_seen.clear()
            self.minimax_references.clear()
            self.minimax_audio.clear()
            if config:
                self.config.apply(dataclasses.asdict(self._initial_config))
                self.rng.seed(self.config.seed)
