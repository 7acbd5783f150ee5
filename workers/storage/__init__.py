"""Object storage backends, picked by `SONGQUEUE_STORAGE_URL`."""

from __future__ import annotations

from producer.core.settings import Settings
from workers.storage.base import Storage
from workers.storage.file import FileStorage


def open_storage(settings: Settings) -> Storage:
    url = settings.storage_url
    if url.startswith("file://"):
        return FileStorage.from_url(url)
    if url.startswith("s3://"):
        from workers.storage.s3 import S3Storage  # boto3 loads only where S3 is used

        return S3Storage.from_settings(settings)
    raise ValueError(f"SONGQUEUE_STORAGE_URL: unsupported scheme in {url!r} (expected file:// or s3://)")


__all__ = ["Storage", "open_storage"]
