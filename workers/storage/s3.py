"""S3-compatible storage (`s3://bucket/prefix`): AWS S3, MinIO, and the like, through boto3.

The endpoint is SONGQUEUE_S3_ENDPOINT_URL (AWS when empty); credentials and region come
from the standard AWS variables (see producer.core.objects.s3). Uploads stream from disk with
multipart parts of SONGQUEUE_S3_PART_BYTES, so memory stays flat whatever the size; an
S3 object becomes visible only when its PUT or multipart upload completes, and
s3transfer aborts a multipart upload that fails. Each object carries the sha256 of its
bytes (and of the upstream's, where they differ) as object metadata; `stat` trusts an
object only when that metadata is there.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from producer.core.models.job_record import StoredObject
from producer.core.objects.s3 import S3Location, s3_client
from producer.core.settings import Settings
from workers.artifacts.manifest import check_key
from workers.storage.base import file_sha256
from workers.upstream.errors import PermanentError, TransientError, UpstreamError

SHA256_META = "sha256"
UPSTREAM_SHA256_META = "upstream-sha256"
# put() spools its chunks (a manifest, in practice) in memory up to this size, then on disk.
SPOOL_IN_MEMORY = 1 << 20
# Parts in flight at once: memory is about this many parts' worth of read buffers at most.
UPLOAD_THREADS = 4
_BUSY_CODES = frozenset({"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling",
                         "RequestTimeTooSkewed"})


class S3Storage:
    def __init__(self, client: Any, bucket: str, prefix: str, part_bytes: int) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.transfer = TransferConfig(
            multipart_threshold=part_bytes, multipart_chunksize=part_bytes, max_concurrency=UPLOAD_THREADS,
            use_threads=True, preferred_transfer_client="classic",
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        where = S3Location.parse(settings.storage_url)
        return cls(s3_client(settings), where.bucket, where.key, settings.s3_part_bytes)

    def _object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        # The sha256 goes into the object's metadata, which is sent first: so the bytes are
        # spooled (and hashed) before the upload starts.
        digest = hashlib.sha256()
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            for chunk in chunks:
                spool.write(chunk)
                digest.update(chunk)
            size = spool.tell()
            spool.seek(0)
            self._upload(key, content_type, digest.hexdigest(), None,
                         lambda extra: self.client.upload_fileobj(spool, self.bucket, self._object_key(key),
                                                                  ExtraArgs=extra, Config=self.transfer))
        return self._stored(key, size, digest.hexdigest(), content_type, None)

    def put_file(self, key: str, path: Path, content_type: str, upstream_sha256: str | None = None,
                 sha256: str | None = None) -> StoredObject:
        digest = sha256 or file_sha256(path)
        size = path.stat().st_size
        # By file name, s3transfer reads each part from disk as it sends it; from a file
        # object it would buffer whole parts in memory.
        self._upload(key, content_type, digest, upstream_sha256,
                     lambda extra: self.client.upload_file(str(path), self.bucket, self._object_key(key),
                                                           ExtraArgs=extra, Config=self.transfer))
        return self._stored(key, size, digest, content_type, upstream_sha256)

    def _upload(self, key: str, content_type: str, sha256: str, upstream_sha256: str | None, send: Any) -> None:
        metadata = {SHA256_META: sha256}
        if upstream_sha256:
            metadata[UPSTREAM_SHA256_META] = upstream_sha256
        try:
            send({"ContentType": content_type, "Metadata": metadata})
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise storage_error(exc, f"storing {key}") from exc

    def _stored(self, key: str, size: int, sha256: str, content_type: str, upstream: str | None) -> StoredObject:
        return StoredObject(uri=self.uri(key), key=key, size=size, sha256=sha256, content_type=content_type,
                            upstream_sha256=upstream, stored_at=time.time())

    def stat(self, key: str) -> StoredObject | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise storage_error(exc, f"looking up {key}") from exc
        except BotoCoreError as exc:
            raise storage_error(exc, f"looking up {key}") from exc
        metadata = head.get("Metadata", {})
        if not metadata.get(SHA256_META):
            return None  # not written by songqueue: not known to be complete, so not trusted
        return StoredObject(
            uri=self.uri(key), key=key, size=head["ContentLength"], sha256=metadata[SHA256_META],
            content_type=head.get("ContentType", "application/octet-stream"),
            upstream_sha256=metadata.get(UPSTREAM_SHA256_META), stored_at=head["LastModified"].timestamp(),
        )

    def open(self, key: str) -> BinaryIO:
        try:
            body: BinaryIO = self.client.get_object(Bucket=self.bucket, Key=self._object_key(key))["Body"]
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc, f"reading {key}") from exc
        return body

    def uri(self, key: str) -> str:
        return S3Location(self.bucket, self._object_key(key)).uri()

    def discard_partials(self, folder: str) -> int:
        """Nothing to do: a multipart upload cut off mid-way is no object (no key lists it);
        its parts are for an AbortIncompleteMultipartUpload lifecycle rule on the bucket."""
        return 0


def storage_error(exc: Exception, doing: str) -> UpstreamError:
    """Sort a boto3 failure into worth-retrying (unreachable, busy) or not (refused)."""
    if isinstance(exc, S3UploadFailedError):
        # boto3 raises it while handling the ClientError that says why.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, (ClientError, BotoCoreError)):
            exc = cause
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return PermanentError("storage_refused", f"S3 {doing}: no usable AWS credentials "
                              "(set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "unknown"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        said = f"{code}: {error.get('Message', '')}".rstrip(": ")
        if status >= 500 or status == 429 or code in _BUSY_CODES:
            return TransientError("storage_unavailable", f"S3 {doing}: the store answered HTTP {status} ({said})")
        return PermanentError("storage_refused", f"S3 {doing}: the store refused (HTTP {status}, {said})")
    return TransientError("storage_unavailable", f"S3 {doing}: could not reach the store ({type(exc).__name__})")
