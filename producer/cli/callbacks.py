"""`songqueue callbacks endpoints|replay`: the receivers' health, and an event sent again."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from producer.cli.exit_codes import EXIT_OK, BadInput
from producer.client.songqueue import JobNotFound, SongQueue
from producer.core.callbacks import UnknownDelivery
from producer.core.store import endpoints


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("callbacks", help="callback receivers' health (list, re-enable) and replays of an event")
    cb_sub = p.add_subparsers(dest="callbacks_command", required=True)
    e = cb_sub.add_parser("endpoints", help="every receiver origin: state, failing since, last success")
    e.add_argument("--enable", metavar="ORIGIN", default=None,
                   help="enable a disabled origin again (as listed, e.g. https://hooks.example.com:443)")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    r = cb_sub.add_parser("replay", help="send one callback event again, with the same webhook-id")
    r.add_argument("job_id")
    r.add_argument("delivery", help="its delivery id (webhook-id), as in `songqueue status --json` callbacks")
    r.add_argument("--json", action="store_true", help="print the result as JSON")


def _when(at: float | None) -> str:
    return "-" if at is None else dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def command(args: argparse.Namespace) -> int:
    queue = SongQueue()
    client, prefix = queue.store.redis, queue.settings.key_prefix
    if args.callbacks_command == "replay":
        try:
            sent = queue.replay_callback(args.job_id, args.delivery)
        except (JobNotFound, UnknownDelivery) as exc:
            raise BadInput(str(exc)) from None
        if args.json:
            print(json.dumps({"job_id": sent.job_id, "delivery": sent.delivery, "event": sent.event,
                              "attempt": sent.attempt}))
        else:
            print(f"replay sent: job {sent.job_id} {sent.event} delivery {sent.delivery} (attempt {sent.attempt})")
        return EXIT_OK
    if args.enable:
        if not endpoints.enable(client, prefix, args.enable):
            raise BadInput(f"--enable: no callback endpoint {args.enable} (see `songqueue callbacks endpoints`)")
        print(f"enabled {args.enable}")
        return EXIT_OK
    rows = endpoints.every(client, prefix)
    if args.json:
        print(json.dumps([{"origin": e.origin, "state": e.state, "reason": e.reason or None,
                           "failing_since": e.failing_since, "last_success": e.last_success} for e in rows]))
        return EXIT_OK
    if not rows:
        print("no callback endpoints yet")
    for e in rows:
        reason = f"  ({e.reason})" if e.reason else ""
        print(f"{e.origin:<40} {e.state:<8} failing since {_when(e.failing_since):<20} "
              f"last success {_when(e.last_success)}{reason}")
    return EXIT_OK
