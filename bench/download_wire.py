"""Download closer to the wire: MiB/s of the download task's artifact work on 5 MiB and
50 MiB sandbox MP3s, against `curl` fetching the same URLs to the same disk in the same
run, and the peak memory of the process doing it.

"Our path" is `workers.artifacts.assets.store_audio`, exactly what a download task runs
for a song: the guarded, pinned GET, the tagged spool file written in one pass with both
sha256s, the frame-header check, and file storage taking the file (fsync, link, rename,
directory fsync). It runs in a child process per batch, timed per file, so the task's
Redis bookkeeping (a few milliseconds, measured by `bench/download.py` and
`bench/pipeline_overhead.py`) is left out and the child's VmHWM is the path's own peak
memory. The cover was stored first (as when the cover task wins), so its APIC frame comes
from storage. curl runs on the same URLs between the batches.

    python -m bench.download_wire [--quick]      # or: python bench/run.py --only download_wire
    BENCH_BASELINE_TREE=/path/to/older/tree python -m bench.download_wire   # adds that tree's row
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

from bench import harness
from bench.harness import Section, fmt, median

MIB = 1024 * 1024
SIZES_MIB = (5, 50)
CHILD = Path(__file__).with_name("download_wire_child.py")


def run(quick: bool, baseline_tree: str = "") -> Section:
    """`baseline_tree` (BENCH_BASELINE_TREE when run as a module): another source tree of
    songqueue, e.g. an earlier commit's `git archive`, measured alike in the same rounds."""
    rounds, per_round = (2, 3) if quick else (3, 4)
    curl = shutil.which("curl")
    load_start = os.getloadavg()
    results: dict[int, dict[str, list[float]]] = {}
    with harness.servers("download-wire", "--song-duration", "2") as srv:
        for size in SIZES_MIB:
            songs = _songs(srv.sandbox_url, size)
            got: dict[str, list[float]] = {"ours": [], "cpu": [], "curl": [], "rss": [], "rss_floor": [],
                                           "before": [], "before_cpu": []}
            for _ in range(rounds):
                if baseline_tree:
                    before = _ours(srv, songs, per_round, Path(baseline_tree))
                    got["before"] += before["rates"]
                    got["before_cpu"] += before["cpu_ms"]
                child = _ours(srv, songs, per_round)
                got["ours"] += child["rates"]
                got["cpu"] += child["cpu_ms"]
                got["rss"].append(child["peak_mib"])
                got["rss_floor"].append(child["floor_mib"])
                if curl:
                    got["curl"] += _curl(curl, [songs[i % len(songs)]["song_path"] for i in range(per_round)], srv.tmp)
            results[size] = got
    load_end = os.getloadavg()

    rows = []
    for size, got in results.items():
        ratio = median(got["ours"]) / median(got["curl"]) if got["curl"] else float("nan")
        rows.append([f"{size} MiB", "songqueue store_audio", len(got["ours"]), fmt(median(got["ours"]), 0),
                     f"{fmt(min(got['ours']), 0)}–{fmt(max(got['ours']), 0)}", fmt(median(got["cpu"]), 0),
                     f"{fmt(max(got['rss']), 0)} (after imports {fmt(max(got['rss_floor']), 0)})"])
        if got["before"]:
            rows.append(["", f"songqueue before ({Path(baseline_tree).name})", len(got["before"]),
                         fmt(median(got["before"]), 0), f"{fmt(min(got['before']), 0)}–{fmt(max(got['before']), 0)}",
                         fmt(median(got["before_cpu"]), 0), ""])
        if curl:
            rows.append(["", "curl (baseline)", len(got["curl"]), fmt(median(got["curl"]), 0),
                         f"{fmt(min(got['curl']), 0)}–{fmt(max(got['curl']), 0)}", "", ""])
            before_ratio = f" (before: {fmt(median(got['before']) / median(got['curl']))})" if got["before"] else ""
            rows.append(["", "**ratio** songqueue ÷ curl", "", f"**{fmt(ratio)}**{before_ratio}", "", "", ""])
    small, large = results[SIZES_MIB[0]], results[SIZES_MIB[-1]]
    notes = [
        f"Load average (1, 5, 15 min) at the start {_load(load_start)}, at the end {_load(load_end)}, on 2 cores: "
        "other work shares the machine, so read the ratio, each measured in the same run.",
        f"Peak RSS of the process storing {SIZES_MIB[-1]} MiB songs {fmt(max(large['rss']), 1)} MiB against "
        f"{fmt(max(small['rss']), 1)} MiB for {SIZES_MIB[0]} MiB songs: flat, the bytes stream through "
        f"{harness.settings_from({}).download_chunk_bytes // 1024} KiB chunks.",
        "CPU ms is the child's process time per file: the part of the path that the load cannot stretch.",
        "curl only writes the bytes (no fsync); our path also tags, hashes twice (stored and as served), "
        "verifies and makes the file durable (fsync of the file and of its folder) before it counts as stored.",
    ]
    if not curl:
        notes.append("curl is not installed on this machine: the baseline was skipped.")
    return Section(
        title="Download closer to the wire",
        setup=(f"Sandbox MP3s of {' and '.join(f'{s} MiB' for s in SIZES_MIB)} (constant bitrate, no upstream tag), "
               f"{rounds} rounds of {per_round} files per size; each round runs `store_audio` in a fresh child "
               f"process (file storage and spool folder on the same filesystem) and then `curl -o` on the same "
               f"URLs into the same folder. MiB/s per file, medians."),
        table=harness.table(["file", "client", "files", "MiB/s (median)", "range", "CPU ms/file", "peak RSS MiB"],
                            rows),
        notes=notes,
    )


def _load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def _songs(base_url: str, size_mib: int) -> list[dict]:
    """A finished sandbox task with two songs of `size_mib`: their entries from the fetch answer."""
    headers = {"Authorization": f"Bearer {harness.API_KEY}"}
    prompt = f"bench wire {uuid.uuid4().hex[:10]} sandbox:gen_time=0 sandbox:size_mb={size_mib}"
    answer = requests.post(f"{base_url}/udio/generate-proxy", headers=headers, timeout=60,
                           json={"gen_params": {"prompt": prompt, "lyrics_type": "instrumental"}}).json()
    task_id = answer["data"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        data = requests.get(f"{base_url}/udio/fetch/{task_id}", headers=headers, timeout=60).json()["data"]
        if data.get("status") == "SUCCESS":
            return list(data["data"]["songs"])
        time.sleep(0.05)
    raise RuntimeError(f"the sandbox task {task_id} did not finish")


def _ours(srv: harness.Servers, songs: list[dict], count: int, tree: Path = harness.ROOT) -> dict:
    """`count` songs stored by the `store_audio` of the source tree `tree`, in a child process."""
    folder = srv.tmp / f"wire-{uuid.uuid4().hex[:8]}"
    settings = {"storage_url": (folder / "objects").as_uri(), "spool_dir": str(folder / "spool"),
                "max_download_bytes": 1 << 30, "allow_private_networks": True}
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, str(CHILD), json.dumps(settings), json.dumps(songs), str(count)],
                         capture_output=True, text=True, cwd=tree, env=env, timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the download child failed: {out.stderr[-2000:]}")
    shutil.rmtree(folder, ignore_errors=True)
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _curl(curl: str, urls: list[str], tmp: Path) -> list[float]:
    rates = []
    target = tmp / "curl.mp3"
    for url in urls:
        out = subprocess.run([curl, "-sS", "-o", str(target), "-w", "%{size_download} %{time_total}", url],
                             capture_output=True, text=True, timeout=600, check=True)
        size, seconds = out.stdout.split()
        rates.append(int(float(size)) / MIB / float(seconds))
        target.unlink()
    return rates


if __name__ == "__main__":
    print(run("--quick" in sys.argv, os.environ.get("BENCH_BASELINE_TREE", "")).render())
