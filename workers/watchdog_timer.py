"""Every worker runs the watchdog round itself, on a timer thread of its main process.

No beat is needed to heal: the round is not a message, so no queue backlog can delay or
expire it, and any one surviving worker is enough. A Redis lease (`try_watchdog_round`)
keeps it to one round per interval across the fleet, however many workers tick. The
playlist sweep (the watchdog of playlist runs) and the retention sweep (its own lease
keeps it to one per SONGQUEUE_RETENTION_SWEEP_INTERVAL) tick along with it, and so does the
refresh of this worker's card (workers/fleet_card.py); beat is
needed only to start scheduled playlists.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from celery import signals

log = logging.getLogger("songqueue.watchdog")

_stop = threading.Event()


def tick(rounds: list[Callable[[], Any]], interval: float, stop: threading.Event) -> None:
    """Run every round once per `interval` until `stop`; a failing round waits for the next tick."""
    while not stop.wait(interval):
        for round_ in rounds:
            try:
                round_()
            except Exception:  # noqa: BLE001 - Redis down now is no reason to stop healing later
                log.exception("watchdog: a round failed; the next tick tries again")


@signals.worker_ready.connect
def _start(**_: Any) -> None:
    from workers import fleet_card, runtime
    from workers.tasks.archive import retention_sweep
    from workers.tasks.playlist import playlist_sweep
    from workers.tasks.watchdog import watchdog_round

    interval = runtime.settings().watchdog_interval
    _stop.clear()
    threading.Thread(target=tick, args=([watchdog_round, playlist_sweep, retention_sweep, fleet_card.refresh],
                                         interval, _stop),
                     name="songqueue-watchdog", daemon=True).start()
    log.info("watchdog: this worker runs a round every %gs (one per interval across the fleet)", interval)


@signals.worker_shutdown.connect
def _stop_ticking(**_: Any) -> None:
    _stop.set()
