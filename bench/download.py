"""Download: MB/s of a large sandbox MP3 streamed into file storage by the download task,
against `curl` fetching the same URL to the same disk, and the download worker's peak
memory.

The download worker runs alone on the download queue with concurrency 1, so each MP3 is
one stream, like curl. Its time per file is the task's own runtime from the worker log
(`succeeded in Xs`): download, verification, tagging and storing included. The two
songs of a job are the same size; the covers are a few KiB, so the MP3 runs are the
longest download runs. Memory is the pool child's VmHWM (peak resident set) after a job
of small files and again after the large ones: streaming keeps it flat. curl's peak RSS
is sampled from /proc while it runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

from bench import harness
from bench.harness import Section, fmt, median
from producer import SongQueue
from producer.core.models.job_record import JobRecord, JobState

MIB = 1024 * 1024


def run(quick: bool) -> Section:
    size_mb = 50 if quick else 200
    jobs = 2
    curl = shutil.which("curl")
    with harness.servers("download", "--song-duration", "2") as srv:
        env = srv.env(POLL_INITIAL_DELAY=0)
        srv.start_worker(env, "download-submit-poll", queues="submit,poll", concurrency=1)
        dl = srv.start_worker(env, "download-dl", queues="download", concurrency=1)
        queue = harness.producer(env)

        small = _one_job(queue, harness.prompt("download small", gen_time=0))
        small_mem = dl.memory()
        before = len(_download_runtimes(dl))
        urls, sizes = [], []
        for j in range(jobs):
            record = _one_job(queue, harness.prompt(f"download large {j}", gen_time=0, size_mb=size_mb))
            for song in record.songs:
                urls.append(song.song_path)
                sizes.append(song.audio.size)
                Path(urlparse(song.audio.uri).path).unlink()  # 200 MiB each: keep the disk tidy
        large_mem = dl.memory()
        runtimes = sorted(_download_runtimes(dl)[before:], reverse=True)[: len(urls)]
        ours = [size / MIB / t for size, t in zip(sorted(sizes, reverse=True), runtimes, strict=False)]
        theirs, curl_rss = _curl(curl, urls, srv.tmp) if curl else ([], [])
        small_size = sum(s.audio.size for s in small.songs) / len(small.songs)

    rows = [
        ["songqueue download task (1 slot)", len(ours), fmt(median(sizes) / MIB, 1), fmt(median(ours), 0),
         f"{fmt(min(ours), 0)}–{fmt(max(ours), 0)}",
         f"pool child {fmt(large_mem.child_peak, 0)} (after {fmt(small_size / 1024, 0)} KiB files: "
         f"{fmt(small_mem.child_peak, 0)}); main {fmt(large_mem.main, 0)}"],
    ]
    if curl:
        rows.append(["curl (baseline), same URLs, same disk", len(theirs), fmt(median(sizes) / MIB, 1),
                     fmt(median(theirs), 0), f"{fmt(min(theirs), 0)}–{fmt(max(theirs), 0)}", fmt(max(curl_rss), 0)])
        rows.append(["**ratio** songqueue ÷ curl", "", "", f"**{fmt(median(ours) / median(theirs))}**", "", ""])
    hashing = [_one_hash(int(median(sizes))) for _ in range(3)]
    rows.append(["one sha256 pass alone over the same size (what the task's own thread must hash), this process",
                 len(hashing), fmt(median(sizes) / MIB, 1), fmt(median(hashing), 0),
                 f"{fmt(min(hashing), 0)}–{fmt(max(hashing), 0)}", ""])
    if curl:
        rows.append(["ceiling of the ratio = hashing MiB/s ÷ curl MiB/s", "", "",
                     fmt(median(hashing) / median(theirs)), "", ""])
    notes = [
        f"Peak memory of the download pool child grew by {fmt(large_mem.child_peak - small_mem.child_peak, 1)} MiB "
        f"between a job of small files and {jobs} jobs of {size_mb} MiB songs: the download streams in "
        f"{harness.settings_from(env).download_chunk_bytes // 1024} KiB chunks.",
        "Both clients read from the same sandbox process, which generates the MP3 stream in Python; that "
        "server, sharing the 2 cores, bounds both numbers.",
        "songqueue's download task does more than fetch: it writes the MP3 behind its ID3 tag into a spool file "
        "as it arrives, with the sha256 of the bytes served and of the bytes stored (workers/artifacts/mp3.py), "
        "verifies the frame headers (duration), and storage links the file into place after an fsync; it also "
        "reads and updates the job record in Redis. curl only writes the bytes.",
        "The task keeps two sha256s; past its first MiB the one of the bytes as served runs on a helper thread, "
        "on the other core, so one pass is what bounds the task's own thread: its rate cannot pass that pass's, "
        "and the ratio to curl cannot pass the ceiling row, whatever its I/O does.",
        f"The bench raises SONGQUEUE_MAX_DOWNLOAD_BYTES to 1 GiB: `sandbox:size_mb={size_mb}` makes files of "
        f"{fmt(median(sizes) / MIB, 2)} MiB, and the default cap is 200 MiB.",
    ]
    if not curl:
        notes.append("curl is not installed on this machine: the baseline was skipped.")
    return Section(
        title="Download",
        setup=(f"{jobs} jobs of 2 songs with `sandbox:size_mb={size_mb}` (instant generation) through the real "
               f"pipeline; a dedicated download worker (concurrency 1) stores them with file storage under /tmp. "
               f"Baseline: `curl -o` of the same {len(urls)} URLs into the same folder, one at a time. "
               f"MB/s here is MiB/s."),
        table=harness.table(["client", "files", "file MiB", "MiB/s (median)", "range", "peak RSS MiB"], rows),
        notes=notes,
    )


def _one_hash(size: int) -> float:
    """MiB/s of one sha256 pass over `size` bytes: what the task's own thread must hash (the
    bytes as stored; the bytes as served are hashed on a helper thread, on the other core),
    a ceiling on the task's rate that no change of its I/O can lift while it keeps both
    checksums."""
    block = os.urandom(8 * MIB)
    start = time.perf_counter()
    digest = hashlib.sha256()
    left = size
    while left > 0:
        digest.update(block[: min(left, len(block))])
        left -= len(block)
    return size / MIB / (time.perf_counter() - start)


def _one_job(queue: SongQueue, prompt: str) -> JobRecord:
    (job_id,) = harness.submit_jobs(queue, [prompt])
    record = queue.wait(job_id, timeout=600, interval=0.1)
    if record.state != JobState.SUCCEEDED:
        raise RuntimeError(f"download job ended {record.state.value}: {record.error}")
    return record


def _download_runtimes(worker: harness.Worker) -> list[float]:
    return [t for name, outcome, t in worker.runs() if name == "songqueue.download" and outcome == "succeeded"]


def _curl(curl: str, urls: list[str], tmp: Path) -> tuple[list[float], list[float]]:
    """curl each URL in turn: (MiB/s per file, peak RSS MiB per run).

    curl's VmHWM is sampled from /proc while it runs: wait4()'s ru_maxrss would report this
    Python process's own size, inherited across fork and exec.
    """
    rates, rss = [], []
    target = tmp / "curl.mp3"
    for url in urls:
        proc = subprocess.Popen([curl, "-sS", "-o", str(target), "-w", "%{size_download} %{time_total}", url],
                                stdout=subprocess.PIPE, text=True)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, harness.peak_memory(proc).main)
            time.sleep(0.005)
        out = proc.stdout.read() if proc.stdout else ""
        if proc.returncode != 0:
            raise RuntimeError(f"curl exited {proc.returncode} on {url}")
        size, seconds = out.split()
        rates.append(int(float(size)) / MIB / float(seconds))
        rss.append(peak)
        target.unlink()
    return rates, rss
