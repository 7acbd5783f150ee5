"""Local filesystem storage (`file://./var/objects`, the default)."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from producer.models.job_record import StoredObject
from workers.artifacts.storage_keys import check_key


class FileStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @classmethod
    def from_url(cls, url: str) -> FileStorage:
        parsed = urlparse(url)
        # file://./var/objects is relative to the working directory; file:///abs is absolute.
        path = unquote(parsed.netloc + parsed.path)
        return cls(Path(path))

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Same directory, so the rename is atomic; a dot name, so listings skip it.
        temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            with open(temp, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, final)
        finally:
            temp.unlink(missing_ok=True)
        return StoredObject(uri=self.uri(key), key=key, size=size, sha256=digest.hexdigest(), content_type=content_type,
                            stored_at=time.time())

    def put_file(self, key: str, path: Path, content_type: str, upstream_sha256: str | None = None) -> StoredObject:
        # A copy, not a rename: the spool folder may be on another filesystem.
        with open(path, "rb") as source:
            stored = self.put(key, iter(lambda: source.read(1 << 20), b""), content_type)
        return stored.model_copy(update={"upstream_sha256": upstream_sha256})

    def stat(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        info = path.stat()
        return StoredObject(
            uri=self.uri(key), key=key, size=info.st_size, sha256=digest.hexdigest(), content_type=content_type,
            stored_at=info.st_mtime,
        )

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")  # noqa: SIM115 - returned to the caller

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()
