"""The S3 backend against a real S3 HTTP endpoint (moto's server), the path a MinIO user runs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
import stack
from botocore.config import Config

from producer.core.models.job_record import StoredObject
from producer.core.objects.links import ObjectLinks
from producer.core.settings import Settings
from tests.support.s3_server import AWS_ENV, S3Server, s3  # noqa: F401 - s3 is a fixture
from workers.storage import open_storage
from workers.storage.s3 import S3Storage
from workers.upstream.errors import PermanentError, TransientError

MIB = 1 << 20


def _settings(s3: S3Server, url: str, **extra: object) -> Settings:
    return Settings(storage_url=url, s3_endpoint_url=s3.endpoint, **extra)


@pytest.fixture
def bucket(s3: S3Server) -> str:
    return s3.new_bucket()


def _file(path: Path, size: int) -> str:
    """Write `size` bytes of varied data to `path`; return their sha256."""
    digest = hashlib.sha256()
    block = os.urandom(MIB)
    with open(path, "wb") as out:
        for i in range(0, size, MIB):
            chunk = (i.to_bytes(8, "big") + block)[: min(MIB, size - i)]
            out.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def test_put_stat_open_round_trip_with_sha256_metadata(s3: S3Server, bucket: str) -> None:
    storage = open_storage(_settings(s3, f"s3://{bucket}/songs/v1"))
    assert isinstance(storage, S3Storage)
    body = "{\"title\": \"晨光\"}".encode()

    stored = storage.put("jobs/j1/manifest.json", [body[:5], b"", body[5:]], "application/json")

    assert stored.uri == f"s3://{bucket}/songs/v1/jobs/j1/manifest.json"
    assert (stored.size, stored.sha256) == (len(body), hashlib.sha256(body).hexdigest())
    head = s3.client().head_object(Bucket=bucket, Key="songs/v1/jobs/j1/manifest.json")
    assert head["Metadata"] == {"sha256": stored.sha256}
    assert head["ContentType"] == "application/json"
    found = storage.stat("jobs/j1/manifest.json")
    assert found is not None
    assert (found.uri, found.size, found.sha256, found.content_type) == (
        stored.uri, stored.size, stored.sha256, "application/json")
    with storage.open("jobs/j1/manifest.json") as stream:
        assert stream.read() == body
    assert storage.stat("jobs/j1/song-1.mp3") is None


def test_put_file_multipart_records_both_checksums(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    storage = open_storage(_settings(s3, f"s3://{bucket}", s3_part_bytes=5 * MIB))
    source = tmp_path / "song.mp3"
    sha = _file(source, 12 * MIB)  # three parts

    stored = storage.put_file("jobs/j1/song-1.mp3", source, "audio/mpeg", upstream_sha256="ab" * 32)

    assert stored.uri == f"s3://{bucket}/jobs/j1/song-1.mp3"
    assert (stored.size, stored.sha256, stored.upstream_sha256) == (12 * MIB, sha, "ab" * 32)
    head = s3.client().head_object(Bucket=bucket, Key="jobs/j1/song-1.mp3")
    assert head["ETag"].strip('"').endswith("-3")  # it really went up in parts
    assert head["Metadata"] == {"sha256": sha, "upstream-sha256": "ab" * 32}
    assert storage.stat("jobs/j1/song-1.mp3") == stored.model_copy(update={"stored_at": head["LastModified"].timestamp()})
    body = s3.client().get_object(Bucket=bucket, Key="jobs/j1/song-1.mp3")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha


def test_an_object_without_our_checksum_is_not_trusted(s3: S3Server, bucket: str) -> None:
    # Someone else's (or a half-written) object at our key: re-download, do not adopt it.
    s3.client().put_object(Bucket=bucket, Key="jobs/j1/song-1.mp3", Body=b"ID3 not ours")
    assert open_storage(_settings(s3, f"s3://{bucket}")).stat("jobs/j1/song-1.mp3") is None


def test_a_missing_bucket_is_a_permanent_error_naming_it(s3: S3Server) -> None:
    storage = open_storage(_settings(s3, "s3://no-such-bucket-here/p"))
    with pytest.raises(PermanentError) as caught:
        storage.put("jobs/j1/manifest.json", [b"{}"], "application/json")
    assert caught.value.code == "storage_refused"
    assert "NoSuchBucket" in caught.value.message and "jobs/j1/manifest.json" in caught.value.message


def test_an_unreachable_store_is_transient(tmp_path: Path) -> None:
    import boto3

    client = boto3.session.Session(**{"aws_access_key_id": "x", "aws_secret_access_key": "y"}).client(
        "s3", endpoint_url=f"http://127.0.0.1:{stack.free_port()}", region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2))
    storage = S3Storage(client, "bucket", "", 8 * MIB)
    source = tmp_path / "a.mp3"
    source.write_bytes(b"ID3" + b"\0" * 100)
    with pytest.raises(TransientError) as caught:
        storage.put_file("jobs/j1/song-1.mp3", source, "audio/mpeg")
    assert caught.value.code == "storage_unavailable"
    with pytest.raises(TransientError):
        storage.stat("jobs/j1/song-1.mp3")


def test_unsafe_keys_are_refused_before_any_request(s3: S3Server, bucket: str) -> None:
    storage = open_storage(_settings(s3, f"s3://{bucket}/p"))
    for key in ("../x", "jobs//x", "/abs"):
        with pytest.raises(ValueError):
            storage.put(key, [b"x"], "application/octet-stream")
    assert s3.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_presigned_link_downloads_the_object(s3: S3Server, bucket: str) -> None:
    settings = _settings(s3, f"s3://{bucket}/pre", link_expiry=120)
    stored = open_storage(settings).put("jobs/j1/song-1-cover.png", [b"\x89PNG\r\n\x1a\n" + b"x" * 1000], "image/png")

    link = ObjectLinks(settings).link(stored)

    assert link.startswith(f"{s3.endpoint}/{bucket}/pre/jobs/j1/song-1-cover.png?")
    assert "X-Amz-Expires=120" in link and AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in link
    answer = requests.get(link, timeout=10)
    assert answer.status_code == 200 and hashlib.sha256(answer.content).hexdigest() == stored.sha256
    assert answer.headers["Content-Type"] == "image/png"


def test_file_link_is_the_local_path(tmp_path: Path) -> None:
    root = tmp_path / "o b"
    settings = Settings(storage_url=root.as_uri())
    stored = open_storage(settings).put("jobs/j1/song-1.mp3", [b"ID3"], "audio/mpeg")
    link = ObjectLinks(settings).link(stored)
    assert link == str((root / "jobs/j1/song-1.mp3").resolve())
    assert Path(link).read_bytes() == b"ID3"
    with pytest.raises(ValueError):
        ObjectLinks(settings).link(StoredObject(uri="ftp://x/y", key="y", size=0, sha256="", content_type=""))


@pytest.mark.parametrize(("url", "says"), [
    ("s3://", "needs a bucket"), ("gs://bucket/x", "file:// or s3://"), ("./var/objects", "file:// or s3://"),
])
def test_bad_storage_urls_are_refused_naming_the_setting(url: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        Settings(storage_url=url)
    assert "storage_url" in str(caught.value) and says in str(caught.value)


_UPLOAD_AND_MEASURE = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    from producer.core.settings import Settings
    from workers.storage import open_storage

    storage = open_storage(Settings())
    warm = Path(sys.argv[2])
    # Warm up: the first multipart upload loads boto3's models and starts its threads.
    storage.put_file("warm/up.bin", warm, "application/octet-stream")
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    stored = storage.put_file("jobs/big/song-1.mp3", Path(sys.argv[1]), "audio/mpeg")
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"baseline_kib": baseline, "peak_kib": peak, "sha256": stored.sha256,
                      "size": stored.size, "seconds": seconds}))
""")


def test_a_300_mb_upload_streams_with_flat_memory(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    size = 300 * MIB
    big, warm = tmp_path / "big.bin", tmp_path / "warm.bin"
    sha = _file(big, size)
    _file(warm, 20 * MIB)
    env = stack.worker_env({"SONGQUEUE_STORAGE_URL": f"s3://{bucket}/mem", "SONGQUEUE_S3_ENDPOINT_URL": s3.endpoint,
                            **AWS_ENV})

    run = subprocess.run([sys.executable, "-c", _UPLOAD_AND_MEASURE, str(big), str(warm)], env=env, cwd=stack.ROOT,
                         capture_output=True, text=True, timeout=120)

    assert run.returncode == 0, run.stderr
    measured = json.loads(run.stdout)
    grew_mib = (measured["peak_kib"] - measured["baseline_kib"]) / 1024
    print(f"\n300 MiB upload: {measured['seconds']:.1f}s, peak RSS {measured['peak_kib'] / 1024:.0f} MiB, "
          f"+{grew_mib:.1f} MiB over the warmed-up baseline")
    assert grew_mib < 150, f"the upload grew the process by {grew_mib:.0f} MiB"
    assert (measured["size"], measured["sha256"]) == (size, sha)
    head = s3.client().head_object(Bucket=bucket, Key="mem/jobs/big/song-1.mp3")
    assert head["ContentLength"] == size and head["Metadata"]["sha256"] == sha
