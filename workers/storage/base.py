"""The protocol every storage backend implements."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from producer.job_record import StoredObject


class Storage(Protocol):
    def put(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        """Stream `chunks` to `key`; the object becomes visible only once complete.

        Size and sha256 are computed on the way through. If the iterable raises, nothing
        is left at `key` and the error propagates.
        """

    def stat(self, key: str) -> StoredObject | None:
        """The object at `key`, or None when there is none."""

    def uri(self, key: str) -> str:
        """A URI naming the object (file:///… or s3://…)."""
