"""The doctor's report: its checks in order (`run`), one line each (a check's verdict, what it
found, and how to fix it when it failed), and their rendering.

A check that needs a broken service says so and moves on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pydantic

from producer.core.settings import Settings
from producer.core.store.job_store import JobStore


@dataclass(frozen=True)
class Line:
    check: str
    ok: bool
    detail: str
    fix: str = ""
    # Extra facts for --json (the settings in effect, the workers per queue, ...).
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def passed(check: str, detail: str, **data: Any) -> Line:
    return Line(check, True, detail, data=data)


def failed(check: str, detail: str, fix: str, **data: Any) -> Line:
    return Line(check, False, detail, fix, data=data)


def render(lines: list[Line]) -> str:
    width = max((len(line.check) for line in lines), default=0)
    out = []
    for line in lines:
        out.append(f"{'ok  ' if line.ok else 'FAIL'}  {line.check:<{width}}  {line.detail}")
        if not line.ok and line.fix:
            out.append(f"{'':<{width + 6}}  fix: {line.fix}")
    passing = sum(line.ok for line in lines)
    out.append(f"{passing} of {len(lines)} checks pass")
    return "\n".join(out)


def run(providers: Sequence[str]) -> list[Line]:
    """Every check, in order: settings, variables, Redis, broker, workers, the fleet's cards, watchdog, clock,
    storage, each provider of `providers`, callbacks."""
    from producer.doctor import config_checks, service_checks  # they import Line from here

    try:
        settings = Settings()
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"SONGQUEUE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        return [failed("settings", f"invalid: {problems or exc}", "fix the named SONGQUEUE_* variables "
                       "(docs/configuration.md lists each with its rule)"), config_checks.unknown_settings()]
    from producer.client.songqueue import SongQueue  # the sending app, as a backend would build it

    app = SongQueue(settings).celery
    lines = [config_checks.settings_in_effect(settings), config_checks.unknown_settings()]
    client, redis_line = service_checks.redis_client(settings)
    store = None if client is None else JobStore(client, settings.key_prefix)
    broker_line = service_checks.broker(app, settings)
    lines += [redis_line, broker_line, service_checks.workers(app, broker_line.ok),
              service_checks.fleet(client, settings), service_checks.watchdog(store, settings),
              service_checks.clock_skew(client, settings.key_prefix),
              config_checks.storage_writable(settings)]
    lines += [config_checks.provider(settings, name) for name in providers]
    lines.append(config_checks.callback_secret(settings, service_checks.jobs_with_callbacks(store)))
    return lines
