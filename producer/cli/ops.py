"""`songqueue hooks|stats|metrics|flower|callback-secret`: what an operator runs beside the workers."""

from __future__ import annotations

import argparse
import json
import time

from producer.cli.exit_codes import EXIT_FAILED, EXIT_OK, BadInput
from producer.client.songqueue import SongQueue
from producer.core.callbacks import (
    CallbackUrlError,
    check_callback_url,
    origin,
    public_key_text,
    receiver_secret_text,
)
from producer.core.models.providers import PROVIDERS
from producer.core.settings import get_settings, signing_seed
from producer.core.store import endpoints
from producer.core.url_guard import callback_policy
from producer.ops import operator_stats
from producer.ops.flower_launcher import exec_flower


def hooks(args: argparse.Namespace) -> int:
    """POST /hooks/{provider} and the health probes on the hook's port: nothing else of the API."""
    from producer.api.app import create_hooks_app
    from producer.api.server import serve

    return serve(create_hooks_app(get_settings()), args.host, args.port, name="hooks")


def stats(args: argparse.Namespace) -> int:
    queue = SongQueue()
    snapshot = operator_stats.collect(queue.settings, queue.store.redis, queue.celery, sorted(PROVIDERS))
    if args.json:
        print(json.dumps(snapshot.as_dict()))
        return EXIT_OK
    print("jobs:   " + "  ".join(f"{state} {n}" for state, n in snapshot.jobs.items()))
    print("queues: " + "  ".join(f"{name} {n}" for name, n in snapshot.queues.items()))
    print(f"providers (spend on {snapshot.day} UTC):")
    for name, p in snapshot.providers.items():
        limit = f" of {p.max_in_flight}" if p.max_in_flight is not None else ""
        budget = f" of {p.daily_budget:g}" if p.daily_budget is not None else " (no budget)"
        print(f"  {name:<8} in flight {p.in_flight}{limit}   spent {p.spent_today:g}{budget}")
    return EXIT_OK


def callback_secret(args: argparse.Namespace) -> int:
    """Print the secret a callback receiver verifies its signatures with (Standard Webhooks whsec_ form);
    `rotate ORIGIN` moves that origin to its next secret and prints it; `public-key` prints the whpk_ key."""
    settings = get_settings()
    if args.url == "public-key":
        key = settings.callback_signing_key.get_secret_value()
        if not key:
            raise BadInput("SONGQUEUE_CALLBACK_SIGNING_KEY is not set: no v1a signatures are sent")
        print(public_key_text(signing_seed(key)))
        return EXIT_OK
    master = settings.callback_secret.get_secret_value()
    if not master:
        raise BadInput("SONGQUEUE_CALLBACK_SECRET is not set: callbacks are not signed or sent")
    rotating = args.url == "rotate"
    if rotating and not args.origin:
        raise BadInput("rotate: give the receiver's ORIGIN (or any URL of it)")
    if not rotating and args.origin:
        raise BadInput(f"unexpected argument after the URL (did you mean `callback-secret rotate {args.url}`?)")
    try:
        checked = check_callback_url(args.origin if rotating else args.url, callback_policy(settings))
    except CallbackUrlError as exc:
        raise BadInput(f"{'origin' if rotating else 'url'}: {exc.rule}") from None
    store = SongQueue().store
    if rotating:
        generation = endpoints.rotate(store.redis, store.prefix, origin(checked.url), time.time())
    else:
        generation = endpoints.get(store.redis, store.prefix, origin(checked.url)).generation
    print(receiver_secret_text(master.encode(), checked.url, generation))
    return EXIT_OK


def metrics(args: argparse.Namespace) -> int:
    from producer.ops.metrics import (
        serve,  # prometheus_client only where metrics are served
    )

    return serve(SongQueue(), args.port, args.address)


def flower(args: argparse.Namespace) -> int:
    exec_flower(get_settings(), args.port, args.address, args.insecure)
    return EXIT_OK  # not reached: the process is Flower now


def doctor(args: argparse.Namespace) -> int:
    from producer.doctor.report import render, run

    lines = run(args.provider or sorted(PROVIDERS))
    if args.json:
        print(json.dumps({"ok": all(line.ok for line in lines), "checks": [line.as_dict() for line in lines]},
                         default=str))
    else:
        print(render(lines))
    return EXIT_OK if all(line.ok for line in lines) else EXIT_FAILED
