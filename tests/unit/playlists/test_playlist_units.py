"""Playlists without worker processes: definition parsing and its errors, template
expansion, the schedule calendar, the beat's due check, the m3u8/json contents, the slot
claim on a real Redis, and the check task run eagerly (storage fault, run timeout)."""

from __future__ import annotations

import json
import posixpath
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from producer.cli import main as cli
from producer.client.wait_loop import Deadline, poll_until
from producer.core.models.job_record import JobError, JobRecord, JobState, SongRecord, StoredObject
from producer.core.models.playlist_run import PlaylistRun, RunSong, RunState
from producer.core.playlists.definition import DefinitionError, load_definition, load_folder, parse_definition
from producer.core.playlists.schedule import Cron, Every, parse_duration
from producer.core.settings import Settings
from producer.core.store.job_store import JobStore
from producer.core.store.playlist_store import PlaylistStore
from workers import runtime
from workers.playlists.beat import SlotSchedule
from workers.playlists.output import collect, json_document, m3u8_text, outcome
from workers.storage.file import FileStorage
from workers.tasks import playlist as tasks
from workers.upstream.errors import TransientError

UTC = UTC
BERLIN = ZoneInfo("Europe/Berlin")
GOOD = """
cron = "0 6 * * mon-fri"
timezone = "Europe/Berlin"
prompts = ["morning {date} {time} take {index} of {count} ({name})", "second {index}"]
count = 3
min_success = "50%"

[request]
seed = 7
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- definitions ---------------------------------------------------------------------------


def test_a_good_file_gets_its_defaults(tmp_path: Path) -> None:
    d = load_definition(_write(tmp_path, "morning-mix.toml", GOOD))
    assert d.name == "morning-mix" and d.source.endswith("morning-mix.toml")
    assert (d.provider, d.requests_per_run, d.prefix, d.album_name) == ("udio", 3, "playlists/morning-mix", "morning-mix")
    assert d.min_success_requests == 2  # ceil(50% of 3)
    assert d.timeout_seconds == 6 * 3600
    assert isinstance(d.timing, Cron) and d.timing.tz.key == "Europe/Berlin"


@pytest.mark.parametrize(("text", "key", "rule"), [
    ("colour = 'red'\n" + GOOD, "colour", "unknown key"),
    (GOOD.replace("0 6 * * mon-fri", "61 6 * * *"), "cron", "minute field '61'"),
    (GOOD.replace("0 6 * * mon-fri", "0 6 * *"), "cron", "needs 5 fields"),
    (GOOD.replace("0 6 * * mon-fri", "0 6 31 2 *"), "cron", "never occurs"),
    (GOOD.replace("Europe/Berlin", "Mars/Olympus"), "timezone", "unknown time zone"),
    (GOOD.replace("seed = 7", "seed = 'seven'"), "request.seed", "valid integer"),
    (GOOD.replace("seed = 7", "prompt = 'x'"), "request.prompt", "set by `prompts`"),
    (GOOD.replace("{index}", "{number}", 1), "prompts[0]", "unknown placeholder {number}"),
    (GOOD.replace("second {index}", "second {"), "prompts[1]", "literal braces"),
    (GOOD.replace('"50%"', "4"), "min_success", "more than the 3 requests"),
    (GOOD.replace('"50%"', '"150%"'), "min_success", "percentage"),
    ("every = '5s'\n" + GOOD, "every", "either cron or every"),
    ("storage_prefix = '../elsewhere'\n" + GOOD, "storage_prefix", "no '..'"),
    ("model = 'udio9'\n" + GOOD, "model", "udio32-v1.5"),
    ("provider = 'stable-audio'\n" + GOOD, "provider", "must be one of"),
    (GOOD.replace("[request]", "[request]\nlyrics_type = 'user'"), "request.lyrics", "lyrics"),
    (GOOD.replace("count = 3", "count = 0"), "count", "greater than or equal to 1"),
    (GOOD.replace('cron = "0 6 * * mon-fri"', "every = 'soon'"), "every", "duration"),
    (GOOD.replace("count = 3", "count = = 3"), "(TOML syntax)", "line"),
    ("cron = '* * * * *'\n", "prompts", "required"),
    ("callback_url = 'https://x.test/h'\ncallback_events = ['job.done']\n" + GOOD, "callback_events",
     "unknown event 'job.done'"),
    ("callback_events = ['job.failed']\n" + GOOD, "callback_events", "needs a callback_url"),
])
def test_a_malformed_file_names_its_path_and_key(tmp_path: Path, text: str, key: str, rule: str) -> None:
    path = _write(tmp_path, "bad.toml", text)
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    assert caught.value.path == str(path)
    assert any(k == key and rule in r for k, r in caught.value.problems), caught.value.problems
    assert str(path) in str(caught.value) and key in str(caught.value)


def test_a_bad_file_does_not_stop_the_others_from_loading(tmp_path: Path) -> None:
    _write(tmp_path, "a.toml", GOOD)
    _write(tmp_path, "b.toml", GOOD.replace("Europe/Berlin", "Nowhere/Else"))
    _write(tmp_path, "c.toml", "name = 'a'\n" + GOOD)  # the name of a.toml again
    _write(tmp_path, "d.toml", "prompts = ['manual only']\n")
    _write(tmp_path, "notes.toml.sample", "not toml at all [")

    found, errors = load_folder(tmp_path)

    assert sorted(found) == ["a", "d"] and found["d"].timing is None
    assert [(Path(e.path).name, e.problems[0][0]) for e in errors] == [("b.toml", "timezone"), ("c.toml", "name")]
    assert "already defined in" in errors[1].problems[0][1]
    assert load_folder(tmp_path / "missing") == ({}, [])


def test_the_cli_refuses_a_malformed_file_with_exit_2_naming_path_and_key(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    path = _write(tmp_path, "bad.toml", GOOD.replace("seed = 7", "seed = -5"))
    assert cli.main(["playlist", "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: request.seed:" in err and "greater than or equal to -1" in err


# --- template expansion --------------------------------------------------------------------


def test_prompts_expand_in_the_playlists_time_zone_and_repeat() -> None:
    d = parse_definition({"prompts": ["{name} {date} {time} {index}/{count}", "b{index:02d} {{literal}}"], "count": 3,
                          "timezone": "Europe/Berlin", "model": "udio130-v1.5", "request": {"seed": 3}}, "mix.toml")
    # 23:30 UTC on 31 March is already 1 April in Berlin (summer time, +2).
    requests = d.expand(datetime(2026, 3, 31, 23, 30, tzinfo=UTC))
    assert [r["prompt"] for r in requests] == ["mix 2026-04-01 01:30 1/3", "b02 {literal}", "mix 2026-04-01 01:30 3/3"]
    assert all(r["model_type"] == "udio130-v1.5" and r["seed"] == 3 for r in requests)


def test_minimax_prompts_are_the_lyrics() -> None:
    d = parse_definition({"provider": "minimax", "prompts": ["##晨光 {index}##"], "count": 2,
                          "request": {"refer_voice": "voice-1"}}, "mm.toml")
    assert [r["lyrics"] for r in d.expand(datetime(2026, 1, 1, tzinfo=UTC))] == ["##晨光 1##", "##晨光 2##"]
    with pytest.raises(DefinitionError) as caught:
        parse_definition({"provider": "minimax", "prompts": ["x" * 201], "request": {"refer_voice": "v"}}, "mm.toml")
    assert caught.value.problems[0][0] == "prompts[0]"


# --- the calendar --------------------------------------------------------------------------


def test_cron_slots_follow_the_wall_clock_of_the_time_zone() -> None:
    cron = Cron.parse("0 6 * * mon-fri", BERLIN)
    friday_noon = datetime(2026, 3, 27, 11, 0, tzinfo=UTC)
    assert cron.latest(friday_noon) == datetime(2026, 3, 27, 5, 0, tzinfo=UTC)        # 06:00 CET
    assert cron.next_after(friday_noon) == datetime(2026, 3, 30, 4, 0, tzinfo=UTC)    # Monday 06:00 CEST
    assert cron.latest(datetime(2026, 3, 30, 4, 0, tzinfo=UTC)) == datetime(2026, 3, 30, 4, 0, tzinfo=UTC)
    # 02:30 does not exist on 29 March 2026 in Berlin: the slot is one, an hour later.
    night = Cron.parse("30 2 * * *", BERLIN)
    assert night.next_after(datetime(2026, 3, 28, 12, 0, tzinfo=UTC)) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_every_slots_are_aligned_to_the_epoch() -> None:
    every = Every(5, BERLIN)
    now = datetime.fromtimestamp(1_800_000_003.7, UTC)
    assert every.latest(now).timestamp() == 1_800_000_000
    assert every.next_after(now).timestamp() == 1_800_000_005
    assert [parse_duration(v) for v in ("5s", "2m", "1h", "1d", 7)] == [5, 120, 3600, 86400, 7]


def test_the_beat_schedule_is_due_once_per_slot() -> None:
    now = datetime.fromtimestamp(1_800_000_003.0, UTC)
    schedule = SlotSchedule(None, "5s", "UTC", nowfun=lambda: now)
    due, wait = schedule.is_due(datetime.fromtimestamp(1_799_999_999.0, UTC))
    assert due and wait == pytest.approx(2.0)
    due, wait = schedule.is_due(datetime.fromtimestamp(1_800_000_000.5, UTC))  # sent already this slot
    assert not due and wait == pytest.approx(2.0)
    assert schedule.slot() == datetime.fromtimestamp(1_800_000_000, UTC)
    # After a long outage it is due once, for the latest slot only.
    assert schedule.is_due(now - timedelta(hours=1))[0]
    assert SlotSchedule(None, "5s", "UTC") == SlotSchedule(None, "5s", "UTC") != SlotSchedule("* * * * *", None, "UTC")


# --- playlist files ------------------------------------------------------------------------


def _stored(key: str) -> StoredObject:
    return StoredObject(uri=f"file:///objects/{key}", key=key, size=1, sha256="ab" * 32, content_type="audio/mpeg")


def _job(job_id: str, state: JobState, titles: list[str] = (), error: JobError | None = None) -> JobRecord:
    songs = [SongRecord(upstream_id=f"u{n}", title=title, duration=31.6 + n, finished=True,
                        audio=_stored(f"jobs/{job_id}/song-{n}.mp3")) for n, title in enumerate(titles, 1)]
    return JobRecord(id=job_id, provider="udio", model="udio32-v1.5", request={}, state=state, songs=songs, error=error)


def _run(min_success: int) -> PlaylistRun:
    return PlaylistRun(id="20261122T060000Z-abcd1234", playlist="morning-mix", album="Morning, Mix",
                       provider="udio", storage_prefix="playlists/morning-mix", trigger="schedule",
                       slot=1_795_327_200.0, requests=[{"prompt": "a"}, {"prompt": "b"}, {"prompt": "c"}],
                       min_success=min_success, timeout=60, job_ids=["j1", "j2", "j3"])


def test_m3u8_lists_succeeded_songs_with_paths_relative_to_itself() -> None:
    run = _run(min_success=2)
    failure = JobError(code="upstream_failure", message="content policy")
    jobs = [_job("j1", JobState.SUCCEEDED, ["Dawn", "Line\nbreak, 晨光"]), _job("j2", JobState.FAILED, error=failure),
            _job("j3", JobState.SUCCEEDED, ["", "Last"])]

    songs, failures = collect(run, jobs)
    text = m3u8_text(run, songs)

    assert text == (
        "#EXTM3U\n#PLAYLIST:Morning, Mix\n"
        "#EXTINF:33,Dawn\n../../../jobs/j1/song-1.mp3\n"
        "#EXTINF:34,Line break, 晨光\n../../../jobs/j1/song-2.mp3\n"
        "#EXTINF:33,Morning, Mix 3-1\n../../../jobs/j3/song-1.mp3\n"
        "#EXTINF:34,Last\n../../../jobs/j3/song-2.mp3\n"
    )
    for song in songs:  # each entry resolves, from the playlist's folder, to the stored MP3
        assert posixpath.normpath(posixpath.join(run.run_dir(), song.path)) == song.key
    assert [(f.job_id, f.request_index, f.state, f.error.code) for f in failures] == [("j2", 2, "FAILED", "upstream_failure")]
    assert outcome(run, jobs) == (RunState.SUCCEEDED, 2)
    assert outcome(_run(min_success=3), jobs) == (RunState.FAILED, 2)
    document = json_document(run, songs, failures, RunState.SUCCEEDED, 2, 1.0)
    assert document["scheduled_for"] == "2026-11-22T06:00:00+00:00"
    assert document["failures"][0]["request"] == {"prompt": "b"}
    assert document["failures"][0]["error"]["message"] == "content policy"
    assert len(document["songs"]) == 4 and document["succeeded_requests"] == 2
    # A tenant reads playlist.json through the API: links and paths relative to the file
    # (what the m3u8 plays), never a bucket key or a server path.
    text = json.dumps(document)
    assert not any(song.uri in text or f'"{song.key}"' in text for song in songs)
    assert document["songs"][0]["link"] == "/v1/jobs/j1/songs/1/audio"
    assert all("key" not in song and "uri" not in song for song in document["songs"])


def test_a_vanished_job_is_a_failure_not_a_hang() -> None:
    songs, failures = collect(_run(1), [None, _job("j2", JobState.CANCELLED), _job("j3", JobState.SUCCEEDED, ["x"])])
    assert [f.state for f in failures] == ["MISSING", "CANCELLED"] and len(songs) == 1


# --- the slot claim (real Redis) -----------------------------------------------------------


def test_one_run_per_slot_however_many_attempts(redis_client: redis.Redis, key_prefix: str) -> None:
    store = PlaylistStore(redis_client, key_prefix)
    slot = 1_800_000_000.0
    results: list[tuple[PlaylistRun, bool]] = []

    def attempt(i: int) -> None:
        run = _run(1).model_copy(update={"id": f"run-{i}", "slot": slot, "job_ids": []})
        results.append(store.create(run, check_in=30))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    winners = {run.id for run, created in results if created}
    assert len(winners) == 1 and {run.id for run, _ in results} == winners
    assert [r.id for r in store.recent("morning-mix")] == list(winners)
    assert 0 < redis_client.ttl(f"{key_prefix}:playlist:slot:morning-mix:{int(slot)}") <= 30 * 24 * 3600
    # The next slot is a new run; a manual run (no slot) never collides.
    later, created = store.create(_run(1).model_copy(update={"id": "later", "slot": slot + 5}), check_in=30)
    manual, created_manual = store.create(_run(1).model_copy(update={"id": "manual", "slot": None}), check_in=30)
    assert created and created_manual and later.id == "later" and manual.id == "manual"
    assert store.apply("later", {RunState.RUNNING}, to=RunState.FAILED) is None  # CAS: it is CREATING
    assert store.apply("later", {RunState.CREATING}, to=RunState.RUNNING).state == RunState.RUNNING


# --- the check task, run eagerly on real Redis and file storage ------------------------------


class FlakyStorage:
    """File storage whose first `failures` puts fail as an unreachable store would."""

    def __init__(self, root: Path, failures: int) -> None:
        self.files, self.failures, self.failed = FileStorage(root), failures, 0

    def put(self, key: str, chunks, content_type: str) -> StoredObject:
        if self.failed < self.failures:
            self.failed += 1
            raise TransientError("storage_unavailable", "storage: connection reset")
        return self.files.put(key, chunks, content_type)


@pytest.fixture
def eager(redis_url: str, key_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The worker's runtime on this test's Redis prefix and a file storage whose first put fails."""
    settings = Settings(broker_url=redis_url, key_prefix=key_prefix, playlist_check_interval=0.1, retry_base_delay=0.1)
    jobs = JobStore.from_url(redis_url, key_prefix)
    storage = FlakyStorage(tmp_path, failures=1)
    monkeypatch.setattr(runtime, "settings", lambda: settings)
    monkeypatch.setattr(runtime, "store", lambda: jobs)
    monkeypatch.setattr(runtime, "storage", lambda: storage)
    tasks._queue.cache_clear()  # the producer API the tasks build from runtime.settings()
    yield jobs, PlaylistStore(jobs.redis, key_prefix), storage
    tasks._queue.cache_clear()


def _running(store: PlaylistStore, run: PlaylistRun) -> PlaylistRun:
    run, _ = store.create(run.model_copy(update={"slot": None}), check_in=30)
    return store.apply(run.id, {RunState.CREATING}, to=RunState.RUNNING)


def test_the_check_retries_a_storage_fault_and_then_writes_the_playlist(eager, tmp_path: Path) -> None:
    jobs, store, storage = eager
    for job in (_job("j1", JobState.SUCCEEDED, ["a"]), _job("j2", JobState.FAILED), _job("j3", JobState.SUCCEEDED, ["c"])):
        jobs.create(job)
    run = _running(store, _run(min_success=2))

    tasks.playlist_check.apply(args=[run.id, 0]).get()  # eager: the retry runs at once

    done = store.get(run.id)
    assert storage.failed == 1 and done.state == RunState.SUCCEEDED and done.succeeded_requests == 2
    assert (tmp_path / done.run_dir() / "playlist.m3u8").read_text().count("#EXTINF:") == 2


def test_past_its_timeout_a_run_cancels_what_is_open_and_ends_with_what_it_has(eager) -> None:
    jobs, store, storage = eager
    storage.failures = 0
    for job in (_job("j1", JobState.SUCCEEDED, ["a"]), _job("j2", JobState.GENERATING), _job("j3", JobState.QUEUED)):
        jobs.create(job)
    run = _running(store, _run(min_success=1).model_copy(update={"timeout": 0}))

    tasks.playlist_check.apply(args=[run.id, 0]).get()
    # A stale token (the sweep took over) does nothing, even on an ended run.
    tasks.playlist_check.apply(args=[run.id, 7]).get()

    done = store.get(run.id)
    assert done.state == RunState.SUCCEEDED and len(done.songs) == 1
    assert [(f.job_id, f.state, f.error.code) for f in done.failures] == [
        ("j2", "CANCELLED", "playlist_timeout"), ("j3", "CANCELLED", "playlist_timeout")]
    assert jobs.get("j2").state == JobState.CANCELLED


def test_wait_loop_reports_every_read_and_hands_back_the_last_on_timeout() -> None:
    """The one loop behind `songqueue wait`, SongQueue.wait and `playlist run --wait`."""
    reads = iter(range(10))
    seen: list[int] = []
    assert poll_until(lambda: next(reads), lambda n: n == 3, None, on_progress=seen.append, interval=0) == 3
    assert seen == [0, 1, 2, 3]
    with pytest.raises(Deadline) as caught:
        poll_until(lambda: next(reads), lambda n: False, 0, on_progress=seen.append, interval=0)
    assert caught.value.last == 4 and seen[-1] == 4


def test_playlist_status_prints_songs_as_paths_one_can_open(tmp_path, capsys) -> None:
    """Not the M3U8's relative `../../../jobs/...`: an absolute path (or a presigned URL on S3)."""
    from producer.cli.playlist import _print_run
    from producer.core.objects.links import ObjectLinks
    from producer.core.settings import Settings

    song = tmp_path / "objects" / "jobs" / "j1" / "song-1.mp3"
    run = _run(min_success=1).model_copy(update={"songs": [RunSong(
        job_id="j1", request_index=1, song_index=1, title="Dawn", duration=33.0, key="jobs/j1/song-1.mp3",
        uri=song.as_uri(), path="../../../jobs/j1/song-1.mp3", sha256="0" * 64)]})
    links = ObjectLinks(Settings(storage_url=(tmp_path / "objects").as_uri()))
    _print_run(run, [None, None, None], as_json=False, link=links.link_uri)
    out = capsys.readouterr().out
    assert f"song: 'Dawn' {song}" in out and "../" not in out
