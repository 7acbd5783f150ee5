"""Real PNG cover images, built with zlib and struct only (no imaging library)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from functools import lru_cache

SIZE = 64


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


@lru_cache(maxsize=512)
def png_cover(task_id: str, index: int) -> bytes:
    """A 64x64 RGB gradient whose colours derive from (task, song).

    Distinct bytes per song let a test prove that each song's cover was stored
    under that song, not swapped or deduplicated.
    """
    seed = hashlib.sha256(f"{task_id}/{index}".encode()).digest()
    r0, g0, b0 = seed[0], seed[1], seed[2]
    rows = bytearray()
    for y in range(SIZE):
        rows.append(0)  # filter type "None" for each scanline
        for x in range(SIZE):
            rows += bytes(((r0 + 4 * x) & 0xFF, (g0 + 4 * y) & 0xFF, (b0 + 2 * (x + y)) & 0xFF))
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0)  # 8-bit truecolour
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )
