"""MiniMax hex answers: peak memory of taking in a 20 MiB song's answer (40 MiB of hex in
JSON) the old way, the whole body read then `json.loads` and `bytes.fromhex`, against the
streaming way (`workers.providers.minimax_hex.HexAudioSink`, decoded into a spool file).

Each way runs in a fresh child process that reads the answer from a local file in the
64 KiB chunks the HTTP client reads, and reports its `ru_maxrss` (peak resident set);
a third child only imports the same modules, the floor both start from. No network: what
differs between the two ways is what they hold, not how the bytes arrive.

    python -m bench.minimax_hex [--quick]
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import Section, fmt

MIB = 1024 * 1024
CHUNK = 64 * 1024


def run(quick: bool) -> Section:
    size_mib = 5 if quick else 20
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-minimax-hex-") as tmp:
        body = Path(tmp) / "answer.json"
        _write_answer(body, size_mib * MIB)
        peaks = {way: _child(way, body, Path(tmp)) for way in ("floor", "old", "stream")}
    floor = peaks["floor"]
    rows = [
        ["imports only (floor)", fmt(floor / 1024, 1), "-", "-"],
        ["old: read whole, json.loads, bytes.fromhex", fmt(peaks["old"] / 1024, 1),
         fmt((peaks["old"] - floor) / 1024, 1), "1.0x"],
        ["stream: HexAudioSink into a spool file", fmt(peaks["stream"] / 1024, 1),
         fmt((peaks["stream"] - floor) / 1024, 1),
         _ratio(peaks["old"] - floor, peaks["stream"] - floor)],
    ]
    table = "\n".join([
        "| way | peak RSS (MiB) | above floor (MiB) | ratio (above floor) |",
        "|---|---:|---:|---:|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ])
    total_ratio = peaks["old"] / peaks["stream"]
    return Section(
        title="MiniMax hex answer: peak memory",
        setup=f"One {size_mib} MiB song as MiniMax's hex answer ({2 * size_mib} MiB of JSON), taken in by a "
              "fresh child process per way, read from a local file in 64 KiB chunks; peak RSS is the "
              "child's ru_maxrss.",
        table=table,
        notes=[f"whole-process peak: old {fmt(peaks['old'] / 1024, 1)} MiB, stream "
               f"{fmt(peaks['stream'] / 1024, 1)} MiB ({fmt(total_ratio, 1)}x)",
               f"the old way holds the body, the parsed hex string and the decoded bytes at once "
               f"({fmt((peaks['old'] - floor) / 1024 / size_mib, 1)}x the song above the floor); the stream "
               "holds one chunk and the small rest of the answer"],
        seconds=time.monotonic() - started,
    )


def _ratio(old_kib: int, stream_kib: int) -> str:
    # ru_maxrss moves in pages: below 1 MiB the stream's growth is reported as a bound.
    if stream_kib < 1024:
        return f">= {fmt(old_kib / 1024, 0)}x less (stream < 1 MiB)"
    return f"{fmt(old_kib / stream_kib, 1)}x less"


def _write_answer(path: Path, size: int) -> None:
    # Random bytes behind an ID3 head: hex of a real song is as incompressible as this.
    with open(path, "wb") as out:
        out.write(b'{"base_resp": {"status_code": 0, "status_msg": "success"}, "data": {"status": 2, "audio": "')
        out.write(b"ID3".hex().encode())
        left = size - 3
        while left:
            piece = os.urandom(min(left, MIB))
            out.write(piece.hex().encode())
            left -= len(piece)
        out.write(b'"}, "extra_info": {"music_duration": 600000, "audio_size": ' + str(size).encode() + b"}}")


def _child(way: str, body: Path, spool: Path) -> int:
    done = subprocess.run([sys.executable, "-m", "bench.minimax_hex", "--child", way, str(body), str(spool)],
                          check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    return int(done.stdout.split()[-1])  # KiB


def _take_in(way: str, body: Path, spool: Path) -> None:
    from workers.providers.minimax_hex import HexAudioSink

    if way == "old":
        chunks: list[bytes] = []
        with open(body, "rb") as source:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                chunks.append(chunk)
        answer = json.loads(b"".join(chunks))
        audio = bytes.fromhex(answer["data"]["audio"])
        assert audio[:3] == b"ID3"
    elif way == "stream":
        sink = HexAudioSink(max_audio_bytes=1 << 40, max_rest_bytes=1 << 20, spool_dir=str(spool))
        with open(body, "rb") as source:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                sink.feed(chunk)
        json.loads(sink.finish())
        assert sink.audio is not None and sink.audio.head[:3] == b"ID3"
        sink.discard()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _take_in(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        section = run(quick="--quick" in sys.argv)
        print(section.render())
