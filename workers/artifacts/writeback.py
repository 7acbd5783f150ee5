"""Start writing a spool file to disk while the rest of it still arrives.

A stored song is fsynced before it counts as stored (workers/storage/file.py). Left to
the end, that fsync waits for every byte of a 50 MiB file to reach the disk: about 40 ms
on the benchmark machine, as long as curl takes for the whole download. Linux's
sync_file_range(SYNC_FILE_RANGE_WRITE) starts writing a range out and returns at once,
without dropping it from the page cache (the S3 upload and the header check read it
back), so the disk works while the network does and the final fsync finds about 10 ms
left. It is a hint, not a durability step: the fsync still makes the file durable.
Python's os module has no binding for it, hence ctypes; where the call does not exist
(not Linux), nothing happens and the fsync does all the work.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import BinaryIO

# Often enough that little is left for the fsync, seldom enough that the calls cost nothing.
EVERY_BYTES = 8 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2


def _bind() -> Callable[[int, int, int, int], int] | None:
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_sync_file_range = _bind()


def start_writeback(out: BinaryIO, start: int, end: int) -> None:
    """Start writing bytes [start, end) of the file behind `out` to disk; does not wait."""
    if _sync_file_range is None or end <= start:
        return
    out.flush()
    _sync_file_range(out.fileno(), start, end - start, _SYNC_FILE_RANGE_WRITE)  # a hint: its result does not matter
