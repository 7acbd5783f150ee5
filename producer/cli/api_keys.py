"""`songqueue keys create|list|revoke`: the HTTP API's keys (producer/api/keys.py).

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
    c.add_argument("--max-in-flight", type=int, default=None, metavar="N",
                   help="its jobs with an upstream task in flight at once; more wait QUEUED (>= 1; default: no limit)")
    c.add_argument("--daily-budget", type=float, default=None, metavar="X",
                   help="what its paid calls may cost per UTC day; a job over it waits or fails by SONGQUEUE_BUDGET_POLICY, "
                        "and the API refuses submits (429) once it is spent (>= 0; default: no budget)")
    c.add_argument("--json", action="store_true")
    ls = keys_sub.add_parser("list", help="every key (never the secret)")
    ls.add_argument("--json", action="store_true")
    r = keys_sub.add_parser("revoke", help="revoke a key at once")
    r.add_argument("key_id")


def _store() -> KeyStore:
    queue = SongQueue()
    return KeyStore(queue.store.redis, queue.settings.key_prefix)


def command(args: argparse.Namespace) -> int:
    store = _store()
    if args.keys_command == "create":
        try:
            key, secret = store.create(args.name, args.tenant, [s.strip() for s in args.scopes.split(",") if s.strip()],
                                       args.max_in_flight, args.daily_budget)
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
    revoked = store.revoke(args.key_id)
    if revoked is None:
        raise BadInput(f"key_id: no key {args.key_id}")
    print(f"key {revoked.id} revoked")
    return EXIT_OK
