"""`songqueue playlist run|list|status`: scheduled batch playlists from the command line.

Exit codes (producer/cli/exit_codes.py): 0 done, 1 the run FAILED, 2 bad input (a malformed
definition names its path and key; an unknown run), 3 timeout of --wait.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from producer.cli.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT
from producer.cli.parser_base import seconds, whole_number
from producer.cli.progress import ProgressDisplay
from producer.client.songqueue import SongQueue
from producer.client.wait_loop import Deadline, poll_until
from producer.core.models.job_record import JobRecord
from producer.core.models.playlist_run import PlaylistRun, RunState, run_view, when
from producer.core.models.text_rules import clean_text
from producer.core.playlists.definition import (
    DefinitionError,
    PlaylistDefinition,
    load_definition,
    load_folder,
)
from producer.core.playlists.start import playlist_store, start_run
from producer.core.settings import get_settings


def add_parser(sub: Any) -> None:
    p = sub.add_parser("playlist", help="scheduled batch playlists (definitions in SONGQUEUE_PLAYLISTS_DIR)")
    commands = p.add_subparsers(dest="playlist_command", required=True)
    run = commands.add_parser("run", help="run a playlist definition now, outside its schedule")
    run.add_argument("file", type=Path, help="a playlist definition (TOML)")
    run.add_argument("--wait", action="store_true", help="wait for the whole batch, with a progress bar")
    run.add_argument("--timeout", type=seconds, default=None, metavar="S",
                     help="with --wait: give up after S seconds, S >= 0 (exit 3)")
    run.add_argument("--json", action="store_true", help="print the run as JSON")
    listing = commands.add_parser("list", help="definitions in the folder, their next run, and recent runs")
    listing.add_argument("--runs", type=whole_number(0, 100), default=3, metavar="N", help="recent runs shown per playlist, 0..100")
    listing.add_argument("--json", action="store_true", help="print the definitions and runs as JSON")
    status = commands.add_parser("status", help="show a playlist run")
    status.add_argument("run_id", help="the run id playlist run printed")
    status.add_argument("--json", action="store_true", help="print the run as JSON")


def command(args: argparse.Namespace) -> int:
    try:
        return {"run": _run, "list": _list, "status": _status}[args.playlist_command](args)
    except DefinitionError as exc:
        print(f"songqueue: bad playlist definition:\n{exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _run(args: argparse.Namespace) -> int:
    definition = load_definition(args.file)  # before anything is written or sent
    queue = SongQueue()
    run, _ = start_run(queue, definition)
    if not args.wait:
        print(json.dumps(run_view(run, _jobs(queue, run)), ensure_ascii=False) if args.json else run.id)
        return EXIT_OK
    print(f"playlist {run.playlist}: run {run.id} started, {len(run.job_ids)} jobs", file=sys.stderr)
    display = ProgressDisplay(sys.stderr)
    store = playlist_store(queue)
    latest = run

    def read() -> tuple[PlaylistRun, list[JobRecord | None]]:
        nonlocal latest
        latest = store.get(latest.id) or latest
        return latest, _jobs(queue, latest)

    reported: set[str] = set()

    def show(view: tuple[PlaylistRun, list[JobRecord | None]]) -> None:
        for row in ended_rows(view[1], reported):
            display.note(row)
        display.show(_label(*view), _batch_progress(view[1]))

    try:
        run, jobs = poll_until(read, lambda view: view[0].state.terminal, args.timeout, on_progress=show)
    except Deadline as exc:
        run, jobs = exc.last
        display.close()
        print(f"songqueue: timed out waiting: run {run.id} still {run.state.value} ({_label(run, jobs)})",
              file=sys.stderr)
        return EXIT_TIMEOUT
    display.close()
    _print_run(run, jobs, args.json, queue.links.link_uri)
    return EXIT_OK if run.state == RunState.SUCCEEDED else EXIT_FAILED


def ended_rows(jobs: list[JobRecord | None], reported: set[str]) -> list[str]:
    """One row per job of the batch that ended since the last call (`reported` remembers)."""
    rows = []
    for number, job in enumerate(jobs, start=1):
        if job is None or not job.state.terminal or job.id in reported:
            continue
        reported.add(job.id)
        error = f" {job.error.code}: {clean_text(job.error.message, 120)}" if job.error else ""
        rows.append(f"  job {number}/{len(jobs)} {job.id}: {job.state.value}{error}")
    return rows


def _label(run: PlaylistRun, jobs: list[JobRecord | None]) -> str:
    """The run's state once it ended; until then how many of its jobs have."""
    ended = sum(1 for job in jobs if job is not None and job.state.terminal)
    return run.state.value if run.state.terminal else f"{ended}/{len(jobs)} ended"


def _batch_progress(jobs: list[JobRecord | None]) -> int:
    """Mean progress of the batch; an ended (or vanished) job counts as done."""
    if not jobs:
        return 100
    return sum(100 if job is None or job.state.terminal else job.progress for job in jobs) // len(jobs)


def _jobs(queue: SongQueue, run: PlaylistRun) -> list[JobRecord | None]:
    return [queue.store.get(job_id) for job_id in run.job_ids]


def _status(args: argparse.Namespace) -> int:
    queue = SongQueue()
    run = playlist_store(queue).get(args.run_id)
    if run is None:
        print(f"songqueue: no playlist run {args.run_id}", file=sys.stderr)
        return EXIT_BAD_INPUT
    _print_run(run, _jobs(queue, run), args.json, queue.links.link_uri)
    return EXIT_OK


def _print_run(run: PlaylistRun, jobs: list[JobRecord | None], as_json: bool, link: Callable[[str], str]) -> None:
    """`link`: a stored object's URI as something to open (an absolute path, or a presigned URL)."""
    if as_json:
        print(json.dumps(run_view(run, jobs), ensure_ascii=False))
        return
    slot = f", scheduled for {when(run.slot)}" if run.slot is not None else ""
    print(f"playlist run {run.id} ({run.playlist}, {run.trigger}{slot}): {run.state.value}")
    print(f"  {run.succeeded_requests if run.state.terminal else '?'} of {len(run.requests)} requests succeeded "
          f"(min_success {run.min_success})")
    for job_id, job in zip(run.job_ids, jobs):
        state = f"{job.state.value} ({job.progress}%)" if job else "MISSING"
        error = f"  {job.error.code}: {job.error.message}" if job and job.error else ""
        print(f"  job {job_id}: {state}{error}")
    for song in run.songs:
        print(f"  song: {song.title!r} {link(song.uri)}")
    if run.m3u8:
        print(f"  playlist: {link(run.m3u8.uri)}")
    if run.error:
        print(f"  error: {run.error.code}: {run.error.message}")


def _next_runs(definition: PlaylistDefinition, count: int = 3) -> list[datetime]:
    timing = definition.timing
    found: list[datetime] = []
    while timing is not None and len(found) < count:
        upcoming = timing.next_after(found[-1] if found else datetime.now(UTC))
        if upcoming is None:
            break
        found.append(upcoming)
    return found


def _list(args: argparse.Namespace) -> int:
    settings = get_settings()
    definitions, errors = load_folder(Path(settings.playlists_dir))
    store = playlist_store(SongQueue(settings))
    rows: list[dict[str, Any]] = []
    for name, definition in sorted(definitions.items()):
        upcoming = [at.astimezone(definition.zone).isoformat(timespec="seconds") for at in _next_runs(definition)]
        rows.append({
            "name": name,
            "source": definition.source,
            "schedule": definition.timing.describe() if definition.timing else None,
            "timezone": definition.timezone,
            "next_run": upcoming[0] if upcoming else None,
            "next_runs": upcoming,
            "warnings": definition.warnings,
            "requests": definition.requests_per_run,
            "recent_runs": [
                {"id": r.id, "state": r.state.value, "trigger": r.trigger, "scheduled_for": when(r.slot),
                 "created_at": when(r.created_at), "succeeded_requests": r.succeeded_requests,
                 "requests": len(r.requests)}
                for r in store.recent(name, args.runs)
            ],
        })
    if args.json:
        print(json.dumps({"folder": settings.playlists_dir, "playlists": rows,
                          "errors": [{"path": e.path, "problems": [{"key": k, "rule": r} for k, r in e.problems]}
                                     for e in errors]}, ensure_ascii=False))
    else:
        if not rows:
            print(f"no playlists in {settings.playlists_dir}")
        for row in rows:
            schedule = row["schedule"] or "no schedule (playlist run only)"
            print(f"{row['name']}  {schedule}  {row['requests']} requests  ({row['source']})")
            if row["next_runs"]:
                print(f"    next: {', '.join(row['next_runs'])}")
            for warning in row["warnings"]:
                print(f"    warning: {warning}")
            for r in row["recent_runs"]:
                done = f"{r['succeeded_requests']}/{r['requests']} succeeded" if r["state"] in ("SUCCEEDED", "FAILED") else ""
                print(f"    {r['id']}  {r['state']:<9} {r['trigger']:<8} {done}")
    for error in errors:
        print(f"songqueue: bad playlist definition:\n{error}", file=sys.stderr)
    return EXIT_BAD_INPUT if errors else EXIT_OK
