"""The pieces that make a finished artifact, one by one: MP3 checks, ID3 tags, safe file
names, fetch into a folder, the manifest, file storage's put_file. Real MP3s (the sandbox's
LAME encoder) and real files; no workers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from mutagen.id3 import ID3, TCOM, TIT2
from mutagen.mp3 import MP3

from producer.client.fetch import FetchError, fetch_job
from producer.client.file_names import MAX_NAME_BYTES, numbered, safe_file_name
from producer.core.models.job_record import JobRecord, JobState, SongRecord, StoredObject, Transition
from producer.core.objects.links import ObjectLinks
from producer.core.settings import Settings
from sandbox.audio import song_mp3
from sandbox.cover import png_cover
from sandbox.files import FAKE_MP3
from workers.artifacts.assets import song_tags
from workers.artifacts.manifest import manifest_document
from workers.artifacts.mp3 import Cover, SongTags, check_mp3, write_tagged_mp3
from workers.storage.file import FileStorage
from workers.upstream.errors import PermanentError

LYRICS = "[Verse]\n晨光照进窗台\n[Chorus]\n晨光 晨光"


@pytest.fixture(scope="module")
def mp3_bytes() -> bytes:
    return song_mp3(3.0, 1)


@pytest.fixture
def mp3(tmp_path: Path, mp3_bytes: bytes) -> Path:
    path = tmp_path / "song.mp3"
    path.write_bytes(mp3_bytes)
    return path


# --- check_mp3 (mp3) -------------------------------------------------------------------------


def test_a_real_mp3_of_the_reported_length_passes(mp3: Path) -> None:
    assert check_mp3(mp3, 3.0, 0.1) == pytest.approx(3.0, abs=0.05)
    assert check_mp3(mp3, None, 0.0) > 0  # no duration from the upstream: parsing is the check


@pytest.mark.parametrize("reported", [1.5, 30.0])
def test_a_wrong_duration_is_refused_with_both_numbers(mp3: Path, reported: float) -> None:
    with pytest.raises(PermanentError) as caught:
        check_mp3(mp3, reported, 1.0)
    assert caught.value.code == "duration_mismatch"
    assert f"{reported:.2f}s" in caught.value.message and "3.0" in caught.value.message


def test_the_tolerance_is_inclusive(mp3: Path) -> None:
    length = MP3(mp3).info.length
    assert check_mp3(mp3, length + 2.0, 2.0) == length


@pytest.mark.parametrize("body", [FAKE_MP3, b"ID3\x04\x00\x00\x00\x00\x00\x00", b"\xff\xfb" + b"\x00" * 10])
def test_bytes_that_only_look_like_mp3_are_not_audio(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "fake.mp3"
    path.write_bytes(body)
    with pytest.raises(PermanentError) as caught:
        check_mp3(path, 3.0, 2.0)
    assert caught.value.code == "download_not_audio"


# --- ID3 tags (mp3) ----------------------------------------------------------------------------


def _tags(**overrides: object) -> SongTags:
    fields: dict = dict(title="Sandbox Song 1 – 晨光", artist="songqueue (udio udio32-v1.5)", album="songqueue job j1",
                        track=1, track_total=2, job_id="j1", upstream_song_id="s-1", upstream_task_id="t-1",
                        lyrics=LYRICS, genres=["mandopop", "female vocalist"],
                        cover=Cover(png_cover("t-1", 1), "image/png"))
    fields.update(overrides)
    return SongTags(**fields)


def _tag(path: Path, tags: SongTags) -> None:
    """Tag the MP3 at `path` the way a download does: one pass from its bytes into a new file."""
    served = path.read_bytes()
    with open(path, "wb") as out:
        write_tagged_mp3([served], out, tags)


def test_tags_are_id3v24_with_cjk_intact_and_the_audio_untouched(mp3: Path, mp3_bytes: bytes) -> None:
    _tag(mp3, _tags())

    tags = ID3(mp3)
    assert tags.version == (2, 4, 0)
    assert str(tags["TIT2"]) == "Sandbox Song 1 – 晨光"
    assert tags["TCON"].text == ["mandopop", "female vocalist"]
    (lyrics,) = tags.getall("USLT")
    assert (lyrics.text, lyrics.lang, lyrics.encoding) == (LYRICS, "und", 3)
    (picture,) = tags.getall("APIC")
    assert picture.data == png_cover("t-1", 1) and picture.mime == "image/png"
    assert tags["TXXX:songqueue job id"].text == ["j1"]
    assert tags["TXXX:upstream task id"].text == ["t-1"]
    # The audio frames follow the tag byte for byte.
    assert mp3.read_bytes().endswith(mp3_bytes)
    assert MP3(mp3).info.length == pytest.approx(3.0, abs=0.05)


def test_retagging_replaces_our_frames_and_keeps_the_upstreams(mp3: Path) -> None:
    upstream = ID3()
    upstream.add(TIT2(encoding=3, text="upstream title"))
    upstream.add(TCOM(encoding=3, text="upstream composer"))
    upstream.save(mp3, v2_version=3)

    _tag(mp3, _tags())
    _tag(mp3, _tags(lyrics="", genres=[], cover=None, upstream_task_id=None))

    tags = ID3(mp3)
    assert str(tags["TIT2"]) == "Sandbox Song 1 – 晨光" and str(tags["TCOM"]) == "upstream composer"
    assert not tags.getall("USLT") and not tags.getall("APIC") and not tags.getall("TCON")
    assert not tags.getall("TXXX:upstream task id") and tags["TXXX:songqueue job id"].text == ["j1"]


def _record(**overrides: object) -> JobRecord:
    fields: dict = dict(id="job1", provider="udio", model="udio130-v1.5", request={"prompt": "p"},
                        upstream_task_id="task-9",
                        songs=[SongRecord(upstream_id="u1", title="", lyrics="", tags=["a"]),
                               SongRecord(upstream_id="u2", title="Two", lyrics=LYRICS, tags=["b", "c"])])
    fields.update(overrides)
    return JobRecord(**fields)


def test_song_tags_defaults_and_the_album_hook() -> None:
    tags = song_tags(_record(), 1, Settings(), None)
    assert (tags.title, tags.artist, tags.album) == ("Two", "songqueue (udio udio130-v1.5)", "songqueue job job1")
    assert (tags.track, tags.track_total, tags.upstream_song_id, tags.upstream_task_id) == (2, 2, "u2", "task-9")
    assert (tags.lyrics, tags.genres) == (LYRICS, ["b", "c"])
    untitled = song_tags(_record(album="Morning Mix"), 0, Settings(tag_artist="DJ 測試"), None)
    assert (untitled.title, untitled.artist, untitled.album) == ("Song 1", "DJ 測試", "Morning Mix")


# --- manifest -------------------------------------------------------------------------------


def test_manifest_times_every_state_and_keeps_both_checksums() -> None:
    audio = StoredObject(uri="file:///o/a.mp3", key="jobs/job1/song-1.mp3", size=10, sha256="s" * 64,
                         content_type="audio/mpeg", upstream_sha256="u" * 64, stored_at=105.0)
    record = _record(transitions=[Transition(state=JobState.QUEUED, at=100.0),
                                  Transition(state=JobState.SUBMITTING, at=100.5),
                                  Transition(state=JobState.DOWNLOADING, at=104.0)])
    record.songs[0].audio = audio

    doc = manifest_document(record, written_at=106.0)

    assert [(t["state"], t["seconds"]) for t in doc["transitions"]] == [
        ("QUEUED", 0.5), ("SUBMITTING", 3.5), ("DOWNLOADING", 2.0)]
    assert doc["songs"][0]["audio"] == {"key": audio.key, "uri": audio.uri, "size": 10, "content_type": "audio/mpeg",
                                        "sha256": "s" * 64, "upstream_sha256": "u" * 64, "stored_at": 105.0}
    assert doc["songs"][1]["audio"] is None and doc["upstream_task_id"] == "task-9"


# --- file names -----------------------------------------------------------------------------


@pytest.mark.parametrize(("stem", "expected"), [
    ("01 - Sandbox Song 1 – 晨光", "01 - Sandbox Song 1 – 晨光.mp3"),
    ("AC/DC: Back\\in?Black*", "AC_DC_ Back_in_Black_.mp3"),
    ("tab\there\nnew\x00line\x1b[31m", "tab here newline[31m.mp3"),
    ("evil\u202egnp.exe", "evilgnp.exe.mp3"),  # a bidi override cannot flip the visible extension
    ("  ..hidden.  ", "hidden.mp3"),
    ("CON", "_CON.mp3"), ("com1", "_com1.mp3"), ("LPT9.txt", "_LPT9.txt.mp3"), ("CONSOLE", "CONSOLE.mp3"),
    ("", "untitled.mp3"), ("///", "___.mp3"), ("\x01\x02", "untitled.mp3"),
])
def test_safe_file_name(stem: str, expected: str) -> None:
    assert safe_file_name(stem, "mp3") == expected


def test_long_names_are_cut_by_bytes_never_mid_character() -> None:
    name = safe_file_name("01 - " + "晨" * 300, "mp3")
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert name.endswith("晨.mp3") and name.startswith("01 - 晨")
    longer = numbered(name, 12)
    assert len(longer.encode("utf-8")) <= MAX_NAME_BYTES and longer.endswith("晨 (12).mp3")


# --- fetch ----------------------------------------------------------------------------------


@pytest.fixture
def stored_job(tmp_path: Path, mp3_bytes: bytes) -> tuple[JobRecord, ObjectLinks]:
    settings = Settings(storage_url=(tmp_path / "objects").as_uri())
    storage = FileStorage.from_url(settings.storage_url)
    record = _record(state=JobState.SUCCEEDED)
    record.songs[0].title = "Same/Title"
    record.songs[1].title = "same_title"
    for i, song in enumerate(record.songs):
        song.audio = storage.put(f"jobs/job1/song-{i + 1}.mp3", [mp3_bytes, bytes([i])], "audio/mpeg")
        song.cover = storage.put(f"jobs/job1/song-{i + 1}-cover.png", [png_cover("t", i + 1)], "image/png")
    return record, ObjectLinks(settings)


def test_fetch_copies_every_file_under_numbered_safe_names(stored_job, tmp_path: Path) -> None:
    record, links = stored_job
    out = tmp_path / "out"

    paths = fetch_job(record, links, out)

    assert [p.name for p in paths] == ["01 - Same_Title.mp3", "01 - Same_Title.png",
                                       "02 - same_title.mp3", "02 - same_title.png"]
    for path, obj in zip(paths, [record.songs[0].audio, record.songs[0].cover,
                                 record.songs[1].audio, record.songs[1].cover]):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == obj.sha256
    assert sorted(out.iterdir()) == sorted(paths)  # no temporary file left


def test_fetch_twice_reuses_identical_files_and_never_overwrites_others(stored_job, tmp_path: Path) -> None:
    record, links = stored_job
    out = tmp_path / "out"
    out.mkdir()
    (out / "01 - same_title.MP3").write_bytes(b"someone else's file")  # differs only in case

    first = fetch_job(record, links, out)
    second = fetch_job(record, links, out)

    assert first == second
    assert first[0].name == "01 - Same_Title (2).mp3"
    assert (out / "01 - same_title.MP3").read_bytes() == b"someone else's file"
    assert len(list(out.iterdir())) == 5


def test_fetch_refuses_a_copy_whose_checksum_differs(stored_job, tmp_path: Path) -> None:
    record, links = stored_job
    record.songs[0].audio = record.songs[0].audio.model_copy(update={"sha256": "0" * 64})
    out = tmp_path / "out"
    with pytest.raises(FetchError) as caught:
        fetch_job(record, links, out)
    assert "sha256" in str(caught.value)
    assert list(out.iterdir()) == []


# --- file storage: put_file, open -----------------------------------------------------------


def test_file_storage_put_file_records_both_checksums(tmp_path: Path, mp3: Path) -> None:
    storage = FileStorage(tmp_path / "objects")
    stored = storage.put_file("jobs/j1/song-1.mp3", mp3, "audio/mpeg", upstream_sha256="u" * 64)
    data = mp3.read_bytes()
    assert (stored.size, stored.sha256, stored.upstream_sha256) == (len(data), hashlib.sha256(data).hexdigest(),
                                                                    "u" * 64)
    assert stored.stored_at is not None
    with storage.open("jobs/j1/song-1.mp3") as stream:
        assert stream.read() == data
    assert mp3.exists()  # linked or copied: the spool file is the caller's to delete
