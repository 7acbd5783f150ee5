"""`songqueue flower`: Flower on the workers' app, never open by accident.

Flower shows every task's arguments to whoever can open it, and it is open unless told
otherwise, so the launcher refuses to start without `SONGQUEUE_FLOWER_USER` and
`SONGQUEUE_FLOWER_PASSWORD` unless `--insecure` says that is meant. The credentials reach
Flower through its own environment variable (FLOWER_BASIC_AUTH), never the command line,
where `ps` would show the password to every user of the machine. Flower's `/metrics` and
`/healthcheck` stay unauthenticated (Flower's choice): expose its port only to operators
and Prometheus.
"""

from __future__ import annotations

import os
import sys

from producer.core.settings import Settings

FLOWER_APP = "workers.celery_app"
# The tasks page shows each task's argsrepr ("job=ID provider=P prompt='...'"), so an
# operator can search a job by its id and read what it is without opening every task.
TASKS_COLUMNS = "name,uuid,state,args,received,runtime,worker"


class FlowerAuthMissing(ValueError):
    pass


def flower_command(port: int | None, address: str | None) -> list[str]:
    argv = [sys.executable, "-m", "celery", "-A", FLOWER_APP, "flower", f"--tasks_columns={TASKS_COLUMNS}"]
    if port is not None:
        argv.append(f"--port={port}")
    if address is not None:
        argv.append(f"--address={address}")
    return argv


def flower_env(settings: Settings, insecure: bool, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment Flower runs with: basic auth from settings, or none when --insecure."""
    env = dict(os.environ if environ is None else environ)
    env.pop("FLOWER_BASIC_AUTH", None)  # only our settings decide
    password = settings.flower_password.get_secret_value()
    if settings.flower_user and password:
        env["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{password}"
    elif not insecure:
        raise FlowerAuthMissing(
            "SONGQUEUE_FLOWER_USER and SONGQUEUE_FLOWER_PASSWORD: both are required, since Flower shows every "
            "task to whoever opens it (pass --insecure to run it open, on a trusted network only)")
    return env


def exec_flower(settings: Settings, port: int | None, address: str | None, insecure: bool) -> None:
    """Replace this process with Flower (so signals reach it directly)."""
    env = flower_env(settings, insecure)
    argv = flower_command(port, address)
    os.execve(argv[0], argv, env)
