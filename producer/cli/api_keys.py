"""`songqueue keys create|update|list|revoke`: the HTTP API's keys (producer/api/keys.py).

A new key is printed once; Redis keeps only its sha256.
"""

from __future__ import annotations

import argparse
import json
import time

from producer.cli.exit_codes import EXIT_OK, BadInput
from producer.client.songqueue import SongQueue
from producer.core.models.job_record import DEFAULT_TENANT
from producer.core.store.api_keys import KeyStore


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="create, list and revoke the HTTP API's keys")
    keys_sub = p.add_subparsers(dest="keys_command", required=True)
    c = keys_sub.add_parser("create", help="make a key and print it (once)")
    c.add_argument("--name", required=True, help="who or what uses it")
    c.add_argument("--tenant", default=None,
                   help="whose jobs it makes and sees (default: a fresh tenant of its own, key-<id>; "
                        f"tenant {DEFAULT_TENANT} holds the CLI's, Python's and playlists' jobs)")
    c.add_argument("--scopes", default="submit,read", help="comma-separated: submit, read, admin (default submit,read)")
    _limit_flags(c)
    c.add_argument("--json", action="store_true")
    u = keys_sub.add_parser("update", help="change a key's limits (the ones given; the others stay)")
    u.add_argument("key_id")
    _limit_flags(u)
    u.add_argument("--json", action="store_true")
    ls = keys_sub.add_parser("list", help="every key (never the secret)")
    ls.add_argument("--json", action="store_true")
    r = keys_sub.add_parser("revoke", help="revoke a key at once")
    r.add_argument("key_id")


def _limit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-in-flight", type=int, default=None, metavar="N",
                   help="its jobs with an upstream task in flight at once; more are parked QUEUED (>= 1; default: no limit)")
    p.add_argument("--daily-budget", type=float, default=None, metavar="X",
                   help="what its paid calls may cost per UTC day; a job over it waits or fails by SONGQUEUE_BUDGET_POLICY, "
                        "and the API refuses submits (429) once it is spent (>= 0; default: no budget)")
    p.add_argument("--max-queued", type=int, default=None, metavar="N",
                   help="its jobs not yet submitted nor ended; a submit past it is refused with 429 "
                        "(>= 1; default SONGQUEUE_KEY_MAX_QUEUED)")
    p.add_argument("--request-rate", type=float, default=None, metavar="R",
                   help="its API requests per second; past it, 429 with Retry-After (default SONGQUEUE_KEY_REQUEST_RATE)")
    p.add_argument("--max-streams", type=int, default=None, metavar="N",
                   help="its event streams open at once; past it, 429 (>= 1; default SONGQUEUE_KEY_MAX_STREAMS)")


_LIMITS = ("max_in_flight", "daily_budget", "max_queued", "request_rate", "max_streams")


def _limits(args: argparse.Namespace) -> dict[str, float | None]:
    """The limit flags given (an unset flag is no change on update, the default on create)."""
    return {name: getattr(args, name) for name in _LIMITS if getattr(args, name) is not None}


def _store() -> KeyStore:
    queue = SongQueue()
    return KeyStore(queue.store.redis, queue.settings.key_prefix)


def command(args: argparse.Namespace) -> int:
    store = _store()
    if args.keys_command == "create":
        try:
            key, secret = store.create(args.name, args.tenant, [s.strip() for s in args.scopes.split(",") if s.strip()],
                                       **_limits(args))
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        if args.json:
            print(json.dumps({**key.as_dict(), "key": secret, "fresh_tenant": args.tenant is None}))
        else:
            print(f"key {key.id} ({key.name}, tenant {key.tenant}, scopes {','.join(key.scopes)})")
            if args.tenant is None:
                print(f"  tenant {key.tenant} is new and its own: no other key sees its jobs (--tenant to share one)")
            print(f"  {secret}")
            print("  shown once: only its hash is stored")
        return EXIT_OK
    if args.keys_command == "list":
        keys = store.list()
        if args.json:
            print(json.dumps([k.as_dict() for k in keys]))
            return EXIT_OK
        for k in keys:
            status = "revoked " + time.strftime("%Y-%m-%d", time.gmtime(k.revoked_at)) if k.revoked_at else "active"
            limit = f" max-in-flight {k.max_in_flight}" if k.max_in_flight else ""
            print(f"{k.id}  {k.name:<20} tenant {k.tenant:<12} {','.join(k.scopes):<18} {status}{limit}")
        return EXIT_OK
    if args.keys_command == "update":
        try:
            updated = store.update(args.key_id, **_limits(args))
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        if updated is None:
            raise BadInput(f"key_id: no key {args.key_id}")
        print(json.dumps(updated.as_dict()) if args.json else
              f"key {updated.id} ({updated.name}): " + ", ".join(f"{n} {getattr(updated, n)}" for n in _LIMITS))
        return EXIT_OK
    revoked = store.revoke(args.key_id)
    if revoked is None:
        raise BadInput(f"key_id: no key {args.key_id}")
    print(f"key {revoked.id} revoked")
    return EXIT_OK
