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
        return self.link_uri(obj.uri)

    def link_uri(self, uri: str) -> str:
        """A usable link to the object stored at `uri`: its absolute local path (file storage)
        or a presigned URL (S3)."""
        scheme = urlparse(uri).scheme
        if scheme == "file":
            return str(file_path(uri).resolve())
        if scheme == "s3":
            from botocore.exceptions import BotoCoreError

            where = S3Location.parse(uri)
            # Signing is local computation: no request is made until the link is used.
            try:
                url: str = self._s3.generate_presigned_url(
                    "get_object", Params={"Bucket": where.bucket, "Key": where.key},
                    ExpiresIn=self.settings.link_expiry)
            except BotoCoreError as exc:  # no credentials, above all
                raise ObjectUnreadable(f"S3 storage cannot sign a link ({type(exc).__name__})") from exc
            return url
        raise ValueError(f"no link for an object stored at {uri!r}")

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
                raise ObjectUnreadable(_s3_reason(obj.uri, exc.response.get("Error", {}).get("Code", "error"))) from exc
            except BotoCoreError as exc:
                raise ObjectUnreadable(_s3_reason(obj.uri, type(exc).__name__)) from exc
            return body
        raise ObjectUnreadable(f"cannot read an object stored at {obj.uri!r}")


# What to do about the S3 errors a reader meets most, by botocore's error code or class name.
S3_FIXES = {
    "NoCredentialsError": "no S3 credentials here: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, "
                          "or an instance role) where this runs, as the workers have them",
    "PartialCredentialsError": "incomplete S3 credentials: AWS_ACCESS_KEY_ID needs AWS_SECRET_ACCESS_KEY too",
    "InvalidAccessKeyId": "the S3 access key is not known to the endpoint: check AWS_ACCESS_KEY_ID and "
                          "SONGQUEUE_S3_ENDPOINT_URL",
    "SignatureDoesNotMatch": "the S3 secret key does not match the access key: check AWS_SECRET_ACCESS_KEY",
    "AccessDenied": "these S3 credentials may not read this bucket: grant s3:GetObject on it",
    "NoSuchBucket": "the bucket does not exist at this endpoint: check SONGQUEUE_STORAGE_URL and "
                    "SONGQUEUE_S3_ENDPOINT_URL",
    "NoSuchKey": "the object is gone from the bucket (deleted, or a lifecycle rule expired it)",
    "EndpointConnectionError": "the S3 endpoint cannot be reached: check SONGQUEUE_S3_ENDPOINT_URL and the network",
}


def _s3_reason(uri: str, code: str) -> str:
    fix = S3_FIXES.get(code)
    return f"{uri}: {code}" + (f" ({fix})" if fix else "")
