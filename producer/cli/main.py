"""The `songqueue` command line.

Exit codes: 0 done, 1 job failed (or cancelled), 2 bad input, 3 timeout,
4 songqueue itself unreachable (Redis or the broker down).
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import kombu.exceptions
import pydantic
import redis

from producer.ops import operator_stats
from producer.cli import playlist as playlist_cli
from producer.client.callbacks import CallbackUrlError, check_callback_url
from producer.client.songqueue import PROVIDERS, JobNotFound, SongQueue, WaitTimeout
from producer.ops.flower_launcher import FlowerAuthMissing, exec_flower
from producer.models.job_record import JobRecord, JobState
from producer.client.links import ObjectLinks
from producer.models.minimax import MiniMaxRequest
from producer.client.minimax_upload import UploadError
from producer.cli.progress import ProgressDisplay
from producer.client.replay import NotReplayable
from producer.settings import get_settings
from producer.models.udio import UdioRequest
from producer.models.validation_errors import describe

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_TIMEOUT, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4

# gen_params fields that get a flag of their own; `config` is spelled --mode/--extend/--context-length.
_FLAG_ALIASES = {"model_type": "--model"}
_SKIP_FIELDS = {"config", "prompt", "lyrics"}
# argparse hands over strings: pydantic turns "0.5" into a float field, but never into a
# Literal of numbers, so generation_quality is converted here.
_FLAG_TYPES = {"generation_quality": float}
_EXTRA_FLAGS = {"song_section_start": ("--section-start",)}
# MiniMax: (request field, upload purpose) of each reference, given as an id or a file.
_REFERENCES = (("refer_voice", "voice"), ("refer_instrumental", "instrumental"))
# Stands in for an id still to be uploaded while every other rule is checked.
_PENDING_UPLOAD = "pending-upload"


class BadInput(Exception):
    pass


def _add_gen_params_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", help="udio (required): description (generate/instrumental) or style tags (user)")
    lyrics = parser.add_mutually_exclusive_group()
    lyrics.add_argument("--lyrics", help="lyrics text")
    lyrics.add_argument("--lyrics-file", type=Path, help="read the lyrics from a UTF-8 file")
    for name, field in UdioRequest.model_fields.items():
        if name in _SKIP_FIELDS:
            continue
        flags = (_flag(name), *_EXTRA_FLAGS.get(name, ()))
        if field.annotation is bool:
            parser.add_argument(*flags, dest=name, action="store_const", const=True, default=None)
        else:
            parser.add_argument(*flags, dest=name, default=None, type=_FLAG_TYPES.get(name), metavar=name.upper(),
                                help=f"default {field.default!r}" + ("; minimax: music-01" if name == "model_type" else ""))
    parser.add_argument("--mode", choices=["regular", "precede", "continuation"], default=None,
                        help="config.mode; precede/continuation extend the song given by --extend or --extend-job")
    extend = parser.add_mutually_exclusive_group()
    extend.add_argument("--extend", metavar="SONG_ID", help="config.source.song_id: the upstream id of the song to extend")
    extend.add_argument("--extend-job", metavar="JOB_ID", help="extend a song of an earlier job (see --song)")
    parser.add_argument("--song", type=int, metavar="N", help="with --extend-job: which of its songs, from 1 (default 1)")
    parser.add_argument("--context-length", default=None, help="config.context_length, seconds")
    for field, purpose in _REFERENCES:
        group = parser.add_mutually_exclusive_group()
        group.add_argument(_flag(field), dest=field, metavar="ID", help=f"minimax: {field}, an id from the upload API")
        group.add_argument(_flag(field) + "-file", dest=field + "_file", type=Path, metavar="PATH",
                           help=f"minimax: upload this audio file (purpose {purpose}) and use its id as {field}")


def _flag(name: str) -> str:
    return _FLAG_ALIASES.get(name, "--" + name.replace("_", "-"))


def _lyrics(args: argparse.Namespace) -> str | None:
    if args.lyrics_file is None:
        return args.lyrics
    try:
        return args.lyrics_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--lyrics-file: cannot read {args.lyrics_file}: {exc}") from exc


def _refuse_flags_of_other_providers(args: argparse.Namespace) -> None:
    """A flag the chosen provider would ignore is a mistake: say so rather than drop it."""
    udio_only = ["prompt", "mode", "extend", "extend_job", "song", "context_length",
                 *(name for name in UdioRequest.model_fields if name not in _SKIP_FIELDS | {"model_type"})]
    minimax_only = [name for field, _ in _REFERENCES for name in (field, field + "_file")]
    other = minimax_only if args.provider == "udio" else udio_only
    for name in other:
        if getattr(args, name, None) is not None:
            flag = _flag(name[: -len("_file")]) + "-file" if name.endswith("_file") else _flag(name)
            raise BadInput(f"{flag}: not a flag of --provider {args.provider}")
    if args.song is not None and args.extend_job is None:
        raise BadInput("--song: only with --extend-job")


def _song_to_extend(queue: SongQueue, job_id: str, n: int) -> str:
    """The upstream id of song `n` (from 1) of an earlier job, looked up in its record."""
    try:
        record = queue.status(job_id)
    except JobNotFound:
        raise BadInput(f"--extend-job: no job {job_id}") from None
    if record.provider != "udio":
        raise BadInput(f"--extend-job: job {job_id} is a {record.provider} job; only udio songs can be extended")
    if not record.songs:
        raise BadInput(f"--extend-job: job {job_id} has no songs ({record.state.value})")
    if not 1 <= n <= len(record.songs):
        raise BadInput(f"--song: job {job_id} has {len(record.songs)} song(s): N must be 1..{len(record.songs)}, got {n}")
    song = record.songs[n - 1]
    if not song.finished:
        raise BadInput(f"--song: song {n} of job {job_id} is not finished yet ({record.state.value})")
    return song.upstream_id


def _minimax_request(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, tuple[Path, str]]]:
    """The request fields and the reference files still to upload, every rule checked."""
    data: dict[str, Any] = {"lyrics": _lyrics(args)}
    if args.model_type is not None:
        data["model"] = args.model_type
    uploads: dict[str, tuple[Path, str]] = {}
    for field, purpose in _REFERENCES:
        if getattr(args, field) is not None:
            data[field] = getattr(args, field)
        path = getattr(args, field + "_file")
        if path is not None:
            _check_readable(path, _flag(field) + "-file")
            uploads[field] = (path, purpose)
    MiniMaxRequest.model_validate({**data, **{field: _PENDING_UPLOAD for field in uploads}})
    return data, uploads


def _check_readable(path: Path, flag: str) -> None:
    try:
        with path.open("rb") as f:
            if not f.read(1):
                raise BadInput(f"{flag}: {path} is empty")
    except OSError as exc:
        raise BadInput(f"{flag}: cannot read {path}: {exc.strerror or exc}") from exc


def _request_from_args(args: argparse.Namespace, song_to_extend: str | None = None) -> dict[str, Any]:
    if args.prompt is None:
        raise BadInput("--prompt: required with --provider udio")
    data: dict[str, Any] = {"prompt": args.prompt}
    lyrics = _lyrics(args)
    if lyrics is not None:
        data["lyrics"] = lyrics
    for name in UdioRequest.model_fields:
        if name not in _SKIP_FIELDS and getattr(args, name, None) is not None:
            data[name] = getattr(args, name)
    config: dict[str, Any] = {}
    song_id = args.extend or song_to_extend
    if song_id:
        config["mode"] = args.mode or "continuation"
        config["source"] = {"source_type": "song", "song_id": song_id}
    elif args.mode:
        config["mode"] = args.mode
    if args.context_length is not None:
        config["context_length"] = args.context_length
    if config:
        data["config"] = config
    return data


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="songqueue", description="Queue AI song generation and collect the results.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("submit", help="validate and enqueue a generation job")
    _add_gen_params_flags(p)
    p.add_argument("--provider", default="udio", choices=sorted(PROVIDERS))
    p.add_argument("--idempotency-key", help="a repeat submit with the same key returns the first job")
    p.add_argument("--callback-url", metavar="URL", help="POST the job's signed status here when it ends (http/https)")
    p.add_argument("--callback-progress", action="store_true", help="with --callback-url: also on every progress change")
    p.add_argument("--wait", action="store_true", help="wait for the job to end, with a progress bar")
    p.add_argument("--timeout", type=float, default=None, help="with --wait: give up after S seconds (exit 3)")
    p.add_argument("--json", action="store_true", help="print the job as JSON")

    p = sub.add_parser("status", help="show a job")
    p.add_argument("job_id")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("wait", help="wait for a job to end")
    p.add_argument("job_id")
    p.add_argument("--timeout", type=float, default=None)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("cancel", help="cancel a job that has not ended")
    p.add_argument("job_id")

    p = sub.add_parser("list", help="list recent jobs")
    p.add_argument("--state", choices=[s.value for s in JobState])
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("fetch", help="copy a job's songs and covers into a folder, with readable names")
    p.add_argument("job_id")
    p.add_argument("--to", type=Path, required=True, metavar="DIR", help="the folder (created if missing)")

    p = sub.add_parser("hooks", help="serve the notify hook the gateways call (SONGQUEUE_NOTIFY_HOOK_URL)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8809, help="port (default 8809; 0 picks a free port)")

    p = sub.add_parser("retry", help="run a FAILED or TIMED_OUT job again: a new upstream submit")
    p.add_argument("job_id")

    p = sub.add_parser("stats", help="jobs by state, upstream tasks in flight, today's spend, queue depths")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("metrics", help="serve Prometheus metrics of jobs, providers, spend and queues")
    p.add_argument("--port", type=int, default=9808, help="port (default 9808; 0 picks a free port)")
    p.add_argument("--address", default="0.0.0.0", help="address to bind (default 0.0.0.0)")

    p = sub.add_parser("flower", help="run Flower with basic auth from SONGQUEUE_FLOWER_USER/_PASSWORD")
    p.add_argument("--port", type=int, default=None, help="port (Flower's default 5555)")
    p.add_argument("--address", default=None, help="address to bind (Flower's default: all)")
    p.add_argument("--insecure", action="store_true", help="run without authentication (trusted networks only)")

    playlist_cli.add_parser(sub)

    p = sub.add_parser("sandbox", help="run the local gateway (see sandbox/)", add_help=False)
    p.add_argument("sandbox_args", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sandbox"]:
        from sandbox.server import (
            main as sandbox_main,  # the sandbox is optional at runtime
        )

        return sandbox_main(argv[1:])
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_BAD_INPUT if exc.code else EXIT_OK
    try:
        return _COMMANDS[args.command](args)
    except BadInput as exc:
        print(f"songqueue: bad input: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except pydantic.ValidationError as exc:
        print(f"songqueue: bad input:\n{describe(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (JobNotFound, NotReplayable, FlowerAuthMissing) as exc:
        print(f"songqueue: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError, ConnectionError) as exc:
        print(f"songqueue: cannot reach Redis or the broker: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def _callback_url(args: argparse.Namespace) -> str | None:
    if args.callback_url is None:
        if args.callback_progress:
            raise BadInput("--callback-progress: only with --callback-url")
        return None
    try:
        return check_callback_url(args.callback_url, get_settings().callback_hosts)
    except CallbackUrlError as exc:
        raise BadInput(f"--callback-url: {exc.rule}") from None


def _submit(args: argparse.Namespace) -> int:
    _refuse_flags_of_other_providers(args)
    callback_url = _callback_url(args)
    request: UdioRequest | MiniMaxRequest
    if args.provider == "minimax":
        data, uploads = _minimax_request(args)
        queue = SongQueue()
        # Uploaded here, not by a worker: the files are on this machine (producer/client/minimax_upload.py).
        for field, (path, purpose) in uploads.items():
            try:
                data[field] = queue.upload_reference(path, purpose)
            except UploadError as exc:
                if exc.refused:
                    raise BadInput(f"{_flag(field)}-file: {exc}") from exc
                print(f"songqueue: {_flag(field)}-file: {exc}", file=sys.stderr)
                return EXIT_UNAVAILABLE
        request = MiniMaxRequest.model_validate(data)
    elif args.extend_job is not None:
        queue = SongQueue()
        song_id = _song_to_extend(queue, args.extend_job, 1 if args.song is None else args.song)
        request = UdioRequest.model_validate(_request_from_args(args, song_id))
    else:
        request = UdioRequest.model_validate(_request_from_args(args))
        queue = SongQueue()
    handle = queue.submit(request, provider=args.provider, idempotency_key=args.idempotency_key,
                          callback_url=callback_url, callback_progress=args.callback_progress)
    if not args.wait:
        if args.json:
            print(json.dumps(queue.view(handle.id), ensure_ascii=False))
        else:
            print(handle.id)
        return EXIT_OK
    if not args.json:
        print(f"job {handle.id} queued", file=sys.stderr)
    return _wait_and_report(queue, handle.id, args.timeout, args.json)


def _wait(args: argparse.Namespace) -> int:
    return _wait_and_report(SongQueue(), args.job_id, args.timeout, args.json)


def _wait_and_report(queue: SongQueue, job_id: str, timeout: float | None, as_json: bool) -> int:
    display = ProgressDisplay(sys.stderr)
    try:
        record = queue.wait(job_id, timeout=timeout, on_progress=display.update)
    except WaitTimeout as exc:
        display.close()
        print(f"songqueue: timed out waiting: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    display.close()
    _print_record(record, as_json)
    return _exit_code(record)


def _exit_code(record: JobRecord) -> int:
    if record.state == JobState.SUCCEEDED:
        return EXIT_OK
    if record.state == JobState.TIMED_OUT:
        return EXIT_TIMEOUT
    return EXIT_FAILED


def _print_record(record: JobRecord, as_json: bool) -> None:
    if as_json:
        print(json.dumps(record.public_view(link=_links().link), ensure_ascii=False))
        return
    print(f"job {record.id}: {record.state.value} ({record.progress}%)")
    if record.upstream_task_id:
        print(f"  upstream task: {record.upstream_task_id}")
    if record.error:
        print(f"  error: {record.error.code}: {record.error.message}")
    if record.waiting_for:
        print(f"  waiting for: {record.waiting_for}")
    for n, run in enumerate(record.history, 1):
        reason = f"{run.error.code}: {run.error.message}" if run.error else ""
        print(f"  run {n}: {run.state.value}, upstream task {run.upstream_task_id or '-'}  {reason}".rstrip())
    for i, song in enumerate(record.songs, 1):
        duration = f"{song.duration:.1f}s" if song.duration else "?"
        print(f"  song {i}: {song.title!r} ({duration})")
        for label, obj in (("audio", song.audio), ("cover", song.cover)):
            if obj is not None:
                print(f"    {label}: {obj.uri}  ({obj.size} bytes, sha256 {obj.sha256[:12]}…)")
    if record.manifest:
        print(f"  manifest: {record.manifest.uri}")


def _status(args: argparse.Namespace) -> int:
    record = SongQueue().status(args.job_id)
    _print_record(record, args.json)
    return EXIT_OK


def _cancel(args: argparse.Namespace) -> int:
    record = SongQueue().cancel(args.job_id)
    print(f"job {record.id}: {record.state.value}")
    return EXIT_OK if record.state == JobState.CANCELLED else EXIT_FAILED


def _fetch(args: argparse.Namespace) -> int:
    queue = SongQueue()
    record = queue.status(args.job_id)
    if record.stored_assets() == 0:
        print(f"songqueue: job {record.id} has nothing stored yet ({record.state.value})", file=sys.stderr)
        return EXIT_FAILED
    try:
        paths = queue.fetch(record.id, args.to)
    except OSError as exc:
        print(f"songqueue: fetch failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for path in paths:
        print(path)
    if record.state != JobState.SUCCEEDED or record.stored_assets() < record.expected_assets():
        print(f"songqueue: job {record.id} is {record.state.value}: copied {len(paths)} of "
              f"{record.expected_assets()} files", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


@lru_cache(maxsize=1)
def _links() -> ObjectLinks:
    return ObjectLinks(get_settings())


def _list(args: argparse.Namespace) -> int:
    records = SongQueue().list(JobState(args.state) if args.state else None, args.limit)
    if args.json:
        print(json.dumps([r.public_view(link=_links().link) for r in records], ensure_ascii=False))
        return EXIT_OK
    for r in records:
        error = f"  {r.error.code}: {r.error.message}" if r.error else ""
        print(f"{r.id}  {r.state.value:<11} {r.progress:>3}%  {r.provider}/{r.model}{error}")
    return EXIT_OK


def _hooks(args: argparse.Namespace) -> int:
    from producer.ops.hook_server import serve

    return serve(get_settings(), args.host, args.port)


def _retry(args: argparse.Namespace) -> int:
    record = SongQueue().retry(args.job_id)
    runs = len(record.history)
    print(f"job {record.id}: {record.state.value} again (run {runs + 1}; the earlier run is kept in its history)")
    return EXIT_OK


def _stats(args: argparse.Namespace) -> int:
    queue = SongQueue()
    snapshot = operator_stats.collect(queue.settings, queue.store.redis, queue.celery, sorted(PROVIDERS))
    if args.json:
        print(json.dumps(snapshot.as_dict()))
        return EXIT_OK
    print("jobs:   " + "  ".join(f"{state} {n}" for state, n in snapshot.jobs.items()))
    print("queues: " + "  ".join(f"{name} {n}" for name, n in snapshot.queues.items()))
    print(f"providers (spend on {snapshot.day} UTC):")
    for name, p in snapshot.providers.items():
        limit = f" of {p.max_in_flight}" if p.max_in_flight is not None else ""
        budget = f" of {p.daily_budget:g}" if p.daily_budget is not None else " (no budget)"
        print(f"  {name:<8} in flight {p.in_flight}{limit}   spent {p.spent_today:g}{budget}")
    return EXIT_OK


def _metrics(args: argparse.Namespace) -> int:
    from producer.ops.metrics import (
        serve,  # prometheus_client only where metrics are served
    )

    return serve(SongQueue(), args.port, args.address)


def _flower(args: argparse.Namespace) -> int:
    exec_flower(get_settings(), args.port, args.address, args.insecure)
    return EXIT_OK  # not reached: the process is Flower now


_COMMANDS = {"submit": _submit, "status": _status, "wait": _wait, "cancel": _cancel, "list": _list, "fetch": _fetch,
             "hooks": _hooks, "retry": _retry, "stats": _stats, "metrics": _metrics, "flower": _flower,
             "playlist": playlist_cli.command}


if __name__ == "__main__":
    sys.exit(main())
