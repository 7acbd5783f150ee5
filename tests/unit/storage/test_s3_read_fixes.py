"""Reading a stored object back from S3 says what to do about the usual failures."""

from __future__ import annotations

import pytest

from producer.core.models.job_record import StoredObject
from producer.core.objects.links import ObjectLinks, ObjectUnreadable
from producer.core.settings import Settings


def test_no_credentials_names_the_variables_to_set(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # Port 9 (discard) on loopback: signing fails before any request would be made.
    links = ObjectLinks(Settings(storage_url="s3://bucket/prefix", s3_endpoint_url="http://127.0.0.1:9"))
    obj = StoredObject(uri="s3://bucket/prefix/jobs/j/song-1.mp3", key="jobs/j/song-1.mp3", size=1, sha256="0" * 64,
                       content_type="audio/mpeg")
    with pytest.raises(ObjectUnreadable) as refused:
        links.open(obj)
    assert "NoCredentialsError" in str(refused.value) and "AWS_ACCESS_KEY_ID" in str(refused.value)
