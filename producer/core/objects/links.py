"""Usable links to stored objects, and reading them back, for the producer side.

A file:// object's link is its local path; an s3:// object's link is a presigned GET
URL valid for SONGQUEUE_LINK_EXPIRY seconds. Links are made from the object's own URI,
so an object stays reachable after SONGQUEUE_STORAGE_URL changes.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse
from urllib.request import url2pathname

from producer.core.models.job_record import StoredObject
from producer.core.objects.s3 import S3Location, s3_client
from producer.core.settings import Settings


class ObjectUnreadable(OSError):
    """A stored object could not be read back (missing, refused, store unreachable)."""


def file_path(uri: str) -> Path:
    """The local path of a file:// URI (percent-escapes undone)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise ValueError(f"not a file:// URI: {uri!r}")
    return Path(url2pathname(parsed.path))


class ObjectLinks:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def _s3(self) -> Any:
        return s3_client(self.settings)

    def link(self, obj: StoredObject) -> str:
        scheme = urlparse(obj.uri).scheme
        if scheme == "file":
            return str(file_path(obj.uri))
        if scheme == "s3":
            from botocore.exceptions import BotoCoreError

            where = S3Location.parse(obj.uri)
            # Signing is local computation: no request is made until the link is used.
            try:
                url: str = self._s3.generate_presigned_url(
                    "get_object", Params={"Bucket": where.bucket, "Key": where.key},
                    ExpiresIn=self.settings.link_expiry)
            except BotoCoreError as exc:  # no credentials, above all
                raise ObjectUnreadable(f"S3 storage cannot sign a link ({type(exc).__name__})") from exc
            return url
        raise ValueError(f"no link for an object stored at {obj.uri!r}")

    def unservable(self) -> str | None:
        """Why downloads from the configured storage would fail now, or None: for S3, no
        credentials to sign links with (boto3's chain finds none). What /readyz reports."""
        if urlparse(self.settings.storage_url).scheme != "s3":
            return None
        probe = StoredObject(uri=self.settings.storage_url.rstrip("/") + "/readyz", key="readyz", size=0,
                             sha256="", content_type="")
        try:
            self.link(probe)  # signing is local: this asks for credentials, nothing is fetched
        except ObjectUnreadable as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - a client that cannot be made cannot serve either
            return f"S3 client: {type(exc).__name__}"
        return None

    def open(self, obj: StoredObject) -> BinaryIO:
        """The object's bytes as a stream; the caller closes it."""
        scheme = urlparse(obj.uri).scheme
        if scheme == "file":
            return open(file_path(obj.uri), "rb")  # noqa: SIM115 - returned to the caller
        if scheme == "s3":
            from botocore.exceptions import BotoCoreError, ClientError

            where = S3Location.parse(obj.uri)
            try:
                body: BinaryIO = self._s3.get_object(Bucket=where.bucket, Key=where.key)["Body"]
            except ClientError as exc:
                raise ObjectUnreadable(f"{obj.uri}: {exc.response.get('Error', {}).get('Code', 'error')}") from exc
            except BotoCoreError as exc:
                raise ObjectUnreadable(f"{obj.uri}: {type(exc).__name__}") from exc
            return body
        raise ObjectUnreadable(f"cannot read an object stored at {obj.uri!r}")
