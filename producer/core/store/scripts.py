"""Every Redis Lua script of songqueue, loaded from producer/core/store/lua/ and registered
once per Redis client.

Each script is one `<name>.lua` file whose header comment says what it does, the KEYS and
ARGV it takes and what it returns. `script(client, name)` gives the registered redis-py
`Script` for that client, made on first use and kept on the client itself (so it lives and
dies with it: a `Script` holds its client, which a weak-keyed cache would never let go); the
`Script` runs by EVALSHA and, when the server answers NOSCRIPT (a restart, a failover to a
replica that never saw it), loads the text and runs it again. `run(client, name, keys, args)`
is the one call site shape, and `run_async` the same for a redis.asyncio client (the HTTP
API's event loop):

    scripts.run(client, "token_bucket", [bucket_key], [rate, burst])

Callers on both sides (the job store, the poll due set, the workers' admission) go through
here; nothing else registers or EVALs a script.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from redis.commands.core import Script

LUA = Path(__file__).with_name("lua")

# The names of all scripts: the .lua files of the folder.
NAMES = frozenset(path.stem for path in LUA.glob("*.lua"))

_ATTRIBUTE = "_songqueue_scripts"  # on the client: name -> its registered Script
_lock = threading.Lock()


@cache
def source(name: str) -> str:
    """The text of script `name` (KeyError for a name with no file)."""
    if name not in NAMES:
        raise KeyError(f"no Lua script {name!r} in {LUA}")
    return (LUA / f"{name}.lua").read_text()


def script(client: Any, name: str) -> Script:
    """The `Script` `name` registered on `client`: the same object on every call for that client."""
    with _lock:
        per_client: dict[str, Script] | None = getattr(client, _ATTRIBUTE, None)
        if per_client is None:
            per_client = {}
            setattr(client, _ATTRIBUTE, per_client)
        registered = per_client.get(name)
        if registered is None:
            registered = per_client[name] = client.register_script(source(name))
        return registered


def run(client: Any, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """Run script `name` on `client` with `keys` and `args` (EVALSHA, loading it on NOSCRIPT)."""
    return script(client, name)(keys=list(keys), args=list(args))


async def run_async(client: Any, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """`run` on a redis.asyncio client (its `Script` is an `AsyncScript`: the same EVALSHA and NOSCRIPT reload)."""
    return await script(client, name)(keys=list(keys), args=list(args))
