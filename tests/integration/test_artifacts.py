"""Songs as finished artifacts, end to end: real workers, the sandbox over HTTP, a real S3
endpoint (moto's server). Stored MP3s are verified and tagged, manifests carry both
checksums, links work, `fetch --to` writes safe names, early songs download early."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest
import requests
from mutagen.id3 import ID3
from mutagen.mp3 import MP3

from tests.support.s3_server import S3Server, s3  # noqa: F401 - s3 is a fixture
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def _prompt(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_job_on_s3_stores_verified_tagged_songs_a_manifest_and_working_links(make_stack, s3: S3Server, sandbox,
                                                                             tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    spool = tmp_path / "spool"
    s = make_stack(storage_url=f"s3://{bucket}/songqueue", s3_endpoint_url=s3.endpoint, spool_dir=str(spool))
    s.start_worker()

    result = s.cli("submit", "--prompt", _prompt("a rainy night in 台北"), "--wait", "--timeout", "60", "--json")

    assert result.returncode == 0, result.stderr + s.worker_logs()[-3000:]
    view = json.loads(result.stdout)
    job_id = view["id"]
    record = s.queue().status(job_id)
    client = s3.client()
    for n, (song_view, song) in enumerate(zip(view["songs"], record.songs, strict=True), 1):
        audio, cover = song_view["audio"], song_view["cover"]
        assert audio["uri"] == f"s3://{bucket}/songqueue/jobs/{job_id}/song-{n}.mp3"
        assert cover["uri"] == f"s3://{bucket}/songqueue/jobs/{job_id}/song-{n}-cover.png"
        served_mp3 = requests.get(song.song_path, timeout=10).content
        served_png = requests.get(song.image_path, timeout=10).content

        # The object in S3 carries both checksums; the link from status --json fetches it.
        head = client.head_object(Bucket=bucket, Key=f"songqueue/jobs/{job_id}/song-{n}.mp3")
        assert head["Metadata"] == {"sha256": audio["sha256"], "upstream-sha256": _sha(served_mp3)}
        assert head["ContentType"] == "audio/mpeg" and head["ContentLength"] == audio["size"]
        stored_mp3 = requests.get(audio["link"], timeout=10).content
        assert _sha(stored_mp3) == audio["sha256"] != _sha(served_mp3)  # tagged: not the upstream's bytes
        assert song.audio.upstream_sha256 == _sha(served_mp3)
        stored_png = requests.get(cover["link"], timeout=10).content
        assert _sha(stored_png) == cover["sha256"] == _sha(served_png) == song.cover.upstream_sha256

        local = tmp_path / f"song-{n}.mp3"
        local.write_bytes(stored_mp3)
        assert abs(MP3(local).info.length - song_view["duration"]) < 0.1
        tags = ID3(local)
        assert tags.version == (2, 4, 0)
        assert str(tags["TIT2"]) == song.title and "–" in song.title
        assert str(tags["TPE1"]) == f"songqueue (udio {record.model})"
        assert str(tags["TALB"]) == f"songqueue job {job_id}"
        assert str(tags["TRCK"]) == f"{n}/2"
        lyrics = tags.getall("USLT")
        assert len(lyrics) == 1 and lyrics[0].text == song.lyrics and ("晨光" in song.lyrics or "夜雨" in song.lyrics)
        assert tags["TCON"].text == song.tags and len(song.tags) > 1
        (picture,) = tags.getall("APIC")
        assert (picture.mime, picture.type, picture.data) == ("image/png", 3, served_png)
        assert tags["TXXX:songqueue job id"].text == [job_id]
        assert tags["TXXX:upstream song id"].text == [song.upstream_id]
        assert tags["TXXX:upstream task id"].text == [record.upstream_task_id]

    manifest_raw = client.get_object(Bucket=bucket, Key=f"songqueue/jobs/{job_id}/manifest.json")["Body"].read()
    manifest = json.loads(manifest_raw)
    assert sandbox.api_key not in manifest_raw.decode()
    assert manifest["request"]["prompt"].startswith("a rainy night in 台北")
    assert manifest["upstream_task_id"] == record.upstream_task_id
    assert [t["state"] for t in manifest["transitions"]] == [
        "QUEUED", "SUBMITTING", "SUBMITTED", "GENERATING", "DOWNLOADING"][: len(manifest["transitions"])]
    assert manifest["transitions"][-1]["state"] == "DOWNLOADING"
    assert all(t["seconds"] >= 0 for t in manifest["transitions"])
    for entry, song in zip(manifest["songs"], record.songs, strict=True):
        assert entry["upstream_id"] == song.upstream_id and entry["title"] == song.title
        assert entry["audio"]["sha256"] == song.audio.sha256
        assert entry["audio"]["upstream_sha256"] == song.audio.upstream_sha256 != song.audio.sha256
        assert entry["cover"]["size"] == song.cover.size
    assert list(spool.iterdir()) == []  # every spooled download was deleted

    # fetch --to copies the songs out of S3 under readable, safe names.
    out = tmp_path / "my songs"
    fetched = s.cli("fetch", job_id, "--to", str(out))
    assert fetched.returncode == 0, fetched.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["01 - Sandbox Song 1 – 晨光.mp3", "01 - Sandbox Song 1 – 晨光.png",
                     "02 - Sandbox Song 2 – 夜雨.mp3", "02 - Sandbox Song 2 – 夜雨.png"]
    assert fetched.stdout.split("\n")[0] == str(out / names[0])
    assert _sha((out / names[0]).read_bytes()) == record.songs[0].audio.sha256
    assert _sha((out / names[3]).read_bytes()) == record.songs[1].cover.sha256
    # Again: the files are already there, so nothing is copied twice.
    again = s.cli("fetch", job_id, "--to", str(out))
    assert again.returncode == 0 and sorted(p.name for p in out.iterdir()) == names


def test_a_wrong_duration_or_a_fake_mp3_fails_the_job_with_the_reason(make_stack, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    s = make_stack(spool_dir=str(spool))
    s.start_worker()
    queue = s.queue()
    liar = queue.submit({"prompt": _prompt("sandbox:reported_duration=30")})
    fake = queue.submit({"prompt": _prompt("sandbox:dl_fake_mp3")})

    lied, faked = queue.wait(liar.id, timeout=60), queue.wait(fake.id, timeout=60)

    assert (lied.state.value, lied.error.code) == ("FAILED", "duration_mismatch")
    assert "upstream reported 30.00s" in lied.error.message and "SONGQUEUE_DURATION_TOLERANCE" in lied.error.message
    assert lied.error.message.startswith("song ")
    assert (faked.state.value, faked.error.code) == ("FAILED", "download_not_audio")
    assert "does not parse as MPEG audio" in faked.error.message
    for record in (lied, faked):
        assert all(song.audio is None for song in record.songs)
        assert not list((tmp_path / "objects" / "jobs" / record.id).glob("*.mp3"))
    # A job fails on its first bad song while its other song's download run may still be
    # on its way; that run's spool file goes when the run does, so the spool empties.
    wait_for("the spool to hold no file", lambda: not list(spool.iterdir()), timeout=60)
    status = s.cli("status", fake.id, "--json")
    assert json.loads(status.stdout)["error"]["code"] == "download_not_audio"


def test_a_song_finished_early_is_stored_while_its_sibling_generates(make_stack) -> None:
    s = make_stack(poll_max_interval="1", tag_artist="Test Artist 测试")
    s.start_worker()
    queue = s.queue()
    # Song 1 is ready at 4 s, song 2 at 8 s.
    handle = queue.submit({"prompt": _prompt("sandbox:stagger sandbox:gen_time=8")})

    done = queue.wait(handle.id, timeout=60)

    assert done.state.value == "SUCCEEDED"
    # The record's own times, not a window the test must catch: song 1 was stored while the
    # job was still generating (before it reached DOWNLOADING, when song 2 finished).
    reached_downloading = next(t.at for t in done.transitions if t.state.value == "DOWNLOADING")
    assert done.songs[0].audio.stored_at < reached_downloading < done.songs[1].audio.stored_at
    assert str(ID3(Path(queue.link(done.songs[0].audio)))["TPE1"]) == "Test Artist 测试"
    view = queue.view(handle.id)
    assert view["songs"][1]["audio"]["link"] == queue.link(done.songs[1].audio)
    assert Path(view["songs"][1]["audio"]["link"]).is_file()
