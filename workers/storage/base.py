"""The protocol every storage backend implements."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Protocol

from producer.models.job_record import StoredObject


class Storage(Protocol):
    """Failures reach the caller as workers.upstream.errors.TransientError (worth a retry:
    the store is unreachable or busy) or PermanentError (refused: no bucket, no access)."""

    def put(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        """Stream `chunks` to `key`; the object becomes visible only once complete.

        Size and sha256 are computed on the way through. If the iterable raises, nothing
        is left at `key` and the error propagates.
        """

    def put_file(self, key: str, path: Path, content_type: str, upstream_sha256: str | None = None) -> StoredObject:
        """Store the complete local file `path` under `key`, streamed from disk.

        Memory stays flat whatever the file's size; the object becomes visible only once
        complete. `upstream_sha256` is recorded beside the stored bytes' own sha256.
        """

    def stat(self, key: str) -> StoredObject | None:
        """The object at `key`, or None when there is none."""

    def open(self, key: str) -> BinaryIO:
        """The object's bytes as a stream; the caller closes it."""

    def uri(self, key: str) -> str:
        """A URI naming the object (file:///… or s3://…)."""
