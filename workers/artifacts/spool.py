"""Spool files: where a download is written before storage takes it.

A spool file is created empty with the mode any file the worker writes gets (0o666 less
the umask), because file storage may link this very file into place rather than copy it.
It is deleted when the block ends, whatever happened; storage keeps its own link or copy.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def spool_path(spool_dir: str | None, kind: str) -> Iterator[Path]:
    """A new empty file in `spool_dir` (the system temp folder when empty), named for `kind`."""
    folder = Path(spool_dir) if spool_dir else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"songqueue-{kind}-{uuid.uuid4().hex}.part"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
