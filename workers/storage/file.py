"""Local filesystem storage (`file://./var/objects`, the default)."""

from __future__ import annotations

import errno
import functools
import hashlib
import mimetypes
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from producer.core.models.job_record import StoredObject
from workers.artifacts.manifest import check_key
from workers.storage.base import file_sha256
from workers.upstream.errors import PermanentError, TransientError, UpstreamError

# Conditions that can clear by themselves or by an operator's hand (space freed, a busy
# mount back): retried within the step's bound. Any other OSError (permission, read-only
# filesystem, a name too long) fails the job at once with the reason.
_TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EBUSY, errno.EINTR,
                               errno.ETIMEDOUT, errno.ENFILE, errno.EMFILE})


def file_error(exc: OSError, doing: str) -> UpstreamError:
    """Sort a filesystem error into worth-retrying or not; the sentence names the key and the cause."""
    said = f"{doing}: {exc.strerror or exc} (errno {errno.errorcode.get(exc.errno or 0, exc.errno)})"
    if exc.errno in _TRANSIENT_ERRNOS:
        return TransientError("storage_unavailable", f"storage {said}")
    return PermanentError("storage_refused", f"storage {said}")


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
        try:
            return self._put(key, chunks, content_type)
        except OSError as exc:
            if exc.errno is None:
                raise  # not the filesystem's (a download's own error, passed through the chunks)
            raise file_error(exc, f"writing {key}") from exc

    def _put(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
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

    def put_file(self, key: str, path: Path, content_type: str, upstream_sha256: str | None = None,
                 sha256: str | None = None) -> StoredObject:
        try:
            final = self._path(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
            try:
                _place(path, temp)
                size = temp.stat().st_size
                digest = sha256 or file_sha256(temp)
                os.replace(temp, final)
            finally:
                temp.unlink(missing_ok=True)
            _fsync_dir(final.parent)
        except OSError as exc:
            raise file_error(exc, f"writing {key}") from exc
        return StoredObject(uri=self.uri(key), key=key, size=size, sha256=digest, content_type=content_type,
                            upstream_sha256=upstream_sha256, stored_at=time.time())

    def stat(self, key: str) -> StoredObject | None:
        try:
            return self._stat(key)
        except OSError as exc:
            raise file_error(exc, f"reading {key}") from exc

    def _stat(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        info = path.stat()
        return StoredObject(
            uri=self.uri(key), key=key, size=info.st_size, sha256=file_sha256(path), content_type=content_type,
            stored_at=info.st_mtime,
        )

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")  # noqa: SIM115 - returned to the caller

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def discard_partials(self, folder: str) -> int:
        """The `.NAME.<id>.part` files of puts whose process died before the rename (SIGKILL
        mid-write: the `finally` never ran). A put still running (a duplicate run's) loses
        its temp and fails its rename; the job it writes for is complete by then."""
        removed = 0
        for part in self._path(folder).glob(".*.part"):
            part.unlink(missing_ok=True)
            removed += 1
        return removed


# A hard link fails across filesystems (EXDEV) and on filesystems without links; then the
# bytes are copied instead.
_NO_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS})


def _place(source: Path, temp: Path) -> None:
    """Make `temp` (beside the final name) hold `source`'s bytes, on disk before it is renamed.

    On the same filesystem a hard link: no byte is copied, and `source` stays where it was
    for its owner to delete. Elsewhere a copy in the kernel (sendfile). Either way the
    file gets the mode a new file would (the spool's may be stricter).
    """
    try:
        os.link(source, temp)
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        shutil.copyfile(source, temp)
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable: the object is recorded as stored right after."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def _umask() -> int:
    # Read from /proc: os.umask can only be read by setting it, process-wide, which a
    # thread creating a file at that moment would see.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022
