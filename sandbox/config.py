"""Runtime knobs of one sandbox instance: timings and global fault rates.

Set from the command line at start and changed at runtime through
``POST /_sandbox/config``. Changes apply to requests that arrive afterwards;
a task keeps the generation time and song duration it was submitted with, so
a test that changes the config mid-run does not rewrite history.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from sandbox.profiles import PROFILES

RATE_KEYS = (
    "submit_429_rate",
    "submit_500_rate",
    "fetch_500_rate",
    "fetch_429_rate",
    "failure_rate",
    "dl_500_rate",
)


# Text knobs: where every MiniMax upload is redirected ("" = not redirected); uploads carry
# no prompt, so this manner cannot ride in a directive.
URL_KEYS = ("upload_redirect",)


class ConfigError(ValueError):
    """A config change named an unknown key or an out-of-range value."""


@dataclass
class SandboxConfig:
    generation_time: float = 20.0
    song_duration: float = 8.0
    submit_429_rate: float = 0.0
    submit_500_rate: float = 0.0
    fetch_500_rate: float = 0.0
    fetch_429_rate: float = 0.0
    failure_rate: float = 0.0
    dl_500_rate: float = 0.0
    seed: int | None = None
    upload_redirect: str = ""
    # A named world (sandbox/profiles.py) mixed into every submit; "" = none.
    profile: str = ""
    # Most ids one Suno batch fetch may name; more are refused with a 400 naming the cap. 0 = no cap.
    batch_id_cap: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validated_changes(self, changes: Any) -> dict[str, Any]:
        """Check a whole change set before applying any of it (all or nothing)."""
        if not isinstance(changes, dict):
            raise ConfigError("config body must be a JSON object")
        known = {f.name for f in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                raise ConfigError(f"unknown config key {key!r}; known: {sorted(known)}")
            if key == "seed":
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ConfigError("seed must be an integer or null")
                clean[key] = value
                continue
            if key == "profile":
                if value != "" and value not in PROFILES:
                    raise ConfigError(f"profile must be one of {sorted(PROFILES)} or empty")
                clean[key] = value
                continue
            if key == "batch_id_cap":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ConfigError("batch_id_cap must be a whole number >= 0")
                clean[key] = value
                continue
            if key in URL_KEYS:
                if not isinstance(value, str) or (value and not value.startswith(("http://", "https://"))):
                    raise ConfigError(f"{key} must be an http(s) URL or empty")
                clean[key] = value
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{key} must be a number")
            value = float(value)
            if key in RATE_KEYS and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{key} must be between 0 and 1")
            if key == "generation_time" and value < 0:
                raise ConfigError("generation_time must be >= 0")
            if key == "song_duration" and not 0.1 <= value <= 3600:
                raise ConfigError("song_duration must be between 0.1 and 3600 seconds")
            clean[key] = value
        return clean

    def apply(self, clean: dict[str, Any]) -> None:
        for key, value in clean.items():
            setattr(self, key, value)
