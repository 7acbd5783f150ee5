"""The protocol every storage backend implements, and the checksum they share."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Protocol

from producer.core.models.job_record import StoredObject

_BLOCK = 1 << 20


class Storage(Protocol):
    """Failures reach the caller as workers.upstream.errors.TransientError (worth a retry:
    the store is unreachable or busy) or PermanentError (refused: no bucket, no access)."""

    def put(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        """Stream `chunks` to `key`; the object becomes visible only once complete.

        Size and sha256 are computed on the way through. If the iterable raises, nothing
        is left at `key` and the error propagates.
        """

    def put_file(self, key: str, path: Path, content_type: str, upstream_sha256: str | None = None,
                 sha256: str | None = None) -> StoredObject:
        """Store the complete local file `path` under `key`, without reading it into memory.

        The object becomes visible only once complete. `sha256` is the file's own, when the
        caller computed it while writing the file (then the file is not read to hash it
        again); `upstream_sha256` is recorded beside it. `path` is left where it was: the
        caller deletes it, and must not change it afterwards (file storage may link it).
        """

    def stat(self, key: str) -> StoredObject | None:
        """The object at `key`, or None when there is none."""

    def open(self, key: str) -> BinaryIO:
        """The object's bytes as a stream; the caller closes it."""

    def uri(self, key: str) -> str:
        """A URI naming the object (file:///… or s3://…)."""

    def discard_partials(self, folder: str) -> int:
        """Remove what writes cut off mid-way left under `folder` (a worker killed during a
        put); how many. Called once the job's every object is stored, so nothing live is lost."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
