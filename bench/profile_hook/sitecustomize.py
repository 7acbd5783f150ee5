"""Profile a worker's task runs with cProfile (CPU time), switched on by the environment:
`bench/cpu_profile.py` puts this folder first on PYTHONPATH and sets SQ_BENCH_PROFILE_DIR.

Python imports `sitecustomize` at start-up, so the worker needs no code of its own for this.
Each pool child profiles from its start and writes `child-PID.prof` every 20 task runs and at
its exit; the
main process (the consumer: receiving, acking, events) profiles from `worker_ready` and
writes `main-PID.prof` at shutdown. Without the variable this module does nothing.
"""

from __future__ import annotations

import cProfile
import os
import time
from typing import Any

OUT = os.environ.get("SQ_BENCH_PROFILE_DIR", "")


def _hook() -> None:
    from celery import signals

    state: dict[str, Any] = {"profile": None, "runs": 0}

    def start(**_: object) -> None:
        state["profile"] = cProfile.Profile(time.process_time)  # CPU, not waiting
        state["profile"].enable()

    def dump(kind: str) -> None:
        profile = state["profile"]
        if profile is not None:
            profile.disable()
            profile.dump_stats(os.path.join(OUT, f"{kind}-{os.getpid()}.prof"))
            profile.enable()

    def after_run(**_: object) -> None:
        state["runs"] += 1
        if state["runs"] % 20 == 0:
            dump("child")

    signals.worker_process_init.connect(start, weak=False)
    signals.task_postrun.connect(after_run, weak=False)
    signals.worker_process_shutdown.connect(lambda **_: dump("child"), weak=False)
    signals.worker_ready.connect(start, weak=False)
    signals.worker_shutdown.connect(lambda **_: dump("main"), weak=False)


if OUT:
    _hook()
