"""Every Redis Lua script is a documented file in producer/core/store/lua/, registered once
per client by producer/core/store/scripts.py, and no code registers or EVALs one elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from producer.core.store import scripts

ROOT = Path(__file__).resolve().parents[3]
CODE = [p for top in ("producer", "workers") for p in (ROOT / top).rglob("*.py")]


def _header(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line)
    return "\n".join(lines)


@pytest.mark.parametrize("name", sorted(scripts.NAMES))
def test_every_script_has_a_header_saying_what_it_does_takes_and_returns(name: str) -> None:
    header = _header(scripts.source(name))
    assert len(header.splitlines()) >= 3, f"{name}.lua: no header comment"
    for word in ("KEYS", "ARGV", "Returns"):
        assert word in header, f"{name}.lua: its header does not say its {word}"


def test_every_script_named_in_code_is_a_file_and_every_file_is_used() -> None:
    used: set[str] = set()
    for path in CODE:
        used |= set(re.findall(r"scripts\.(?:run|run_async|script)\(\s*\w+,\s*\"(\w+)\"", path.read_text()))
    assert used, "no call of scripts.run/scripts.script found"
    assert used <= scripts.NAMES, f"no .lua file for {sorted(used - scripts.NAMES)}"
    assert used >= scripts.NAMES, f"unused scripts: {sorted(scripts.NAMES - used)}"


def test_no_code_registers_or_evals_a_script_but_the_loader() -> None:
    loader = ROOT / "producer" / "core" / "store" / "scripts.py"
    for path in CODE:
        if path == loader:
            continue
        text = path.read_text()
        assert not re.search(r"register_script\(|\.eval\(|\.evalsha\(", text), path.relative_to(ROOT)


def test_a_script_is_registered_once_per_client(redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    client = redis.Redis(connection_pool=redis_client.connection_pool)
    calls: list[str] = []
    register = client.register_script

    def counting(text: str):  # type: ignore[no-untyped-def]
        calls.append(text)
        return register(text)

    monkeypatch.setattr(client, "register_script", counting)
    first = scripts.script(client, "token_bucket")
    assert scripts.script(client, "token_bucket") is first
    key = "t-scripts:bucket"
    for _ in range(3):
        scripts.run(client, "token_bucket", [key], [1000, 1000])
    assert len(calls) == 1
    # Another client gets its own Script (bound to it), again once.
    other = redis.Redis(connection_pool=redis_client.connection_pool)
    assert scripts.script(other, "token_bucket") is not first
    assert scripts.script(other, "token_bucket").registered_client is other
    client.delete(key)


def test_a_script_the_server_forgot_is_loaded_again(redis_client: redis.Redis) -> None:
    client = redis.Redis(connection_pool=redis_client.connection_pool)
    scripts.run(client, "poll_due_schedule", ["t-scripts:due", "t-scripts:inflight"], ["a", "1"])
    client.script_flush()
    scripts.run(client, "poll_due_schedule", ["t-scripts:due", "t-scripts:inflight"], ["b", "2"])
    assert client.zrange("t-scripts:due", 0, -1) == [b"a", b"b"]
    client.delete("t-scripts:due")


def test_an_unknown_name_is_refused() -> None:
    with pytest.raises(KeyError):
        scripts.source("no_such_script")
