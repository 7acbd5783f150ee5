"""The order of the doctor's checks; a check that needs a broken service says so and moves on."""

from __future__ import annotations

from collections.abc import Sequence

import pydantic

from producer.core.settings import Settings
from producer.core.store.job_store import JobStore
from producer.doctor import config_checks, provider_checks, service_checks
from producer.doctor.report import Line, failed


def run(providers: Sequence[str]) -> list[Line]:
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
              service_checks.watchdog(store, settings), service_checks.clock_skew(client),
              config_checks.storage_writable(settings)]
    lines += [provider_checks.provider(settings, name) for name in providers]
    lines.append(config_checks.callback_secret(settings, service_checks.jobs_with_callbacks(store)))
    return lines
