"""S3 addressing shared by the producer (links, fetch) and the workers' S3 backend.

boto3 is imported lazily: a backend service that only enqueues jobs on file storage
never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from producer.core.settings import Settings


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """`s3://bucket/some/key` -> (bucket, "some/key"); the key may be empty."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an s3://BUCKET[/KEY] URL: {url!r}")
        return cls(parsed.netloc, parsed.path.strip("/"))

    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for SONGQUEUE_S3_ENDPOINT_URL (AWS itself when empty).

    Credentials and region come from boto3's own chain (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, ~/.aws, instance roles), never from
    songqueue settings, so they cannot end up in a task message or a settings dump.
    """
    import boto3
    from botocore.config import Config

    endpoint = settings.s3_endpoint_url or None
    config = Config(
        signature_version="s3v4",
        # MinIO and most S3-compatible servers are addressed by path, not by a
        # bucket-named host that local DNS cannot resolve.
        s3={"addressing_style": "path" if endpoint else "auto"},
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=min(settings.http_timeout, 10.0),
        read_timeout=settings.http_timeout,
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)
