"""The `songqueue` command line.

Exit codes: 0 done, 1 job failed (or cancelled), 2 bad input, 3 timeout,
4 songqueue itself unreachable (Redis or the broker down).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import kombu.exceptions
import pydantic
import redis

from producer.client import JobNotFound, SongQueue, WaitTimeout
from producer.job_record import JobRecord, JobState
from producer.progress import ProgressDisplay
from producer.udio_request import UdioRequest
from producer.validation_errors import describe

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_TIMEOUT, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4

# gen_params fields that get a flag of their own; `config` is spelled --mode/--extend/--context-length.
_FLAG_ALIASES = {"model_type": "--model"}
_SKIP_FIELDS = {"config", "prompt", "lyrics"}
# argparse hands over strings: pydantic turns "0.5" into a float field, but never into a
# Literal of numbers, so generation_quality is converted here.
_FLAG_TYPES = {"generation_quality": float}


class BadInput(Exception):
    pass


def _add_gen_params_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", required=True, help="description (generate/instrumental) or style tags (user)")
    lyrics = parser.add_mutually_exclusive_group()
    lyrics.add_argument("--lyrics", help="lyrics text")
    lyrics.add_argument("--lyrics-file", type=Path, help="read the lyrics from a UTF-8 file")
    for name, field in UdioRequest.model_fields.items():
        if name in _SKIP_FIELDS:
            continue
        flag = _FLAG_ALIASES.get(name, "--" + name.replace("_", "-"))
        if field.annotation is bool:
            parser.add_argument(flag, dest=name, action="store_const", const=True, default=None)
        else:
            parser.add_argument(flag, dest=name, default=None, type=_FLAG_TYPES.get(name), metavar=name.upper(),
                                help=f"default {field.default!r}")
    parser.add_argument("--mode", choices=["regular", "precede", "continuation"], default=None,
                        help="config.mode; precede/continuation extend the song given by --extend")
    parser.add_argument("--extend", metavar="SONG_ID", help="config.source.song_id: the upstream id of the song to extend")
    parser.add_argument("--context-length", default=None, help="config.context_length, seconds")


def _request_from_args(args: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, Any] = {"prompt": args.prompt}
    if args.lyrics_file is not None:
        try:
            data["lyrics"] = args.lyrics_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"--lyrics-file: cannot read {args.lyrics_file}: {exc}") from exc
    elif args.lyrics is not None:
        data["lyrics"] = args.lyrics
    for name in UdioRequest.model_fields:
        if name not in _SKIP_FIELDS and getattr(args, name, None) is not None:
            data[name] = getattr(args, name)
    config: dict[str, Any] = {}
    if args.extend:
        config["mode"] = args.mode or "continuation"
        config["source"] = {"source_type": "song", "song_id": args.extend}
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
    p.add_argument("--provider", default="udio", choices=["udio"])
    p.add_argument("--idempotency-key", help="a repeat submit with the same key returns the first job")
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

    p = sub.add_parser("sandbox", help="run the local gateway (see sandbox/)", add_help=False)
    p.add_argument("sandbox_args", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sandbox"]:
        from sandbox.server import main as sandbox_main  # the sandbox is optional at runtime

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
    except JobNotFound as exc:
        print(f"songqueue: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError, ConnectionError) as exc:
        print(f"songqueue: cannot reach Redis or the broker: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def _submit(args: argparse.Namespace) -> int:
    request = UdioRequest.model_validate(_request_from_args(args))
    queue = SongQueue()
    handle = queue.submit(request, provider=args.provider, idempotency_key=args.idempotency_key)
    if not args.wait:
        if args.json:
            print(json.dumps(queue.status(handle.id).public_view(), ensure_ascii=False))
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
        print(json.dumps(record.public_view(), ensure_ascii=False))
        return
    print(f"job {record.id}: {record.state.value} ({record.progress}%)")
    if record.upstream_task_id:
        print(f"  upstream task: {record.upstream_task_id}")
    if record.error:
        print(f"  error: {record.error.code}: {record.error.message}")
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


def _list(args: argparse.Namespace) -> int:
    records = SongQueue().list(JobState(args.state) if args.state else None, args.limit)
    if args.json:
        print(json.dumps([r.public_view() for r in records], ensure_ascii=False))
        return EXIT_OK
    for r in records:
        error = f"  {r.error.code}: {r.error.message}" if r.error else ""
        print(f"{r.id}  {r.state.value:<11} {r.progress:>3}%  {r.provider}/{r.model}{error}")
    return EXIT_OK


_COMMANDS = {"submit": _submit, "status": _status, "wait": _wait, "cancel": _cancel, "list": _list}


if __name__ == "__main__":
    sys.exit(main())
