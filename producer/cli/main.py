"""The `songqueue` command line: the parser of every command, and the dispatch to its module.

Commands live by group: jobs (producer/cli/jobs.py), operators (ops.py), playlists
(playlist.py). Exit codes: producer/cli/exit_codes.py.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from collections.abc import Callable
from pathlib import Path

import kombu.exceptions
import pydantic
import redis

from producer.cli import api_keys, http_api, jobs, ops
from producer.cli import callbacks as callbacks_cli
from producer.cli import playlist as playlist_cli
from producer.cli.completion import SHELLS, completion_script
from producer.cli.exit_codes import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_OK, EXIT_UNAVAILABLE, BadInput
from producer.cli.parser_base import Parser, seconds, upper_choice, whole_number
from producer.cli.request_flags import add_request_flags, describe_flags
from producer.client.replay import NotReplayable
from producer.client.songqueue import JobNotFound
from producer.core.callbacks import EVENTS
from producer.core.models.job_record import JobState
from producer.core.models.providers import DEFAULT_PROVIDER, PROVIDERS
from producer.core.settings import Settings, describe_settings_error
from producer.core.unknown_settings import warn_unknown
from producer.ops.flower_launcher import FlowerAuthMissing

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "submit": jobs.submit, "status": jobs.status, "wait": jobs.wait, "cancel": jobs.cancel, "list": jobs.list_jobs,
    "fetch": jobs.fetch, "retry": jobs.retry, "hooks": ops.hooks, "stats": ops.stats, "metrics": ops.metrics,
    "callback-secret": ops.callback_secret, "doctor": ops.doctor,
    "flower": ops.flower, "playlist": playlist_cli.command, "api": http_api.command, "keys": api_keys.command,
    "callbacks": callbacks_cli.command,
}


JSON_HELP = "print the result as JSON"


def _parser() -> Parser:
    parser = Parser(prog="songqueue", description="Queue AI song generation and collect the results. "
                    "Start with `songqueue doctor` when something does not work.")
    parser.add_argument("--version", action="version", version=f"songqueue {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("submit", help="validate and enqueue a generation job")
    add_request_flags(p)
    p.add_argument("--provider", default=DEFAULT_PROVIDER, choices=sorted(PROVIDERS), help="the gateway to use")
    p.add_argument("--idempotency-key", help="a repeat submit with the same key returns the first job")
    p.add_argument("--callback-url", metavar="URL", help="POST the job's signed status here when it ends (http/https; "
                   "needs SONGQUEUE_CALLBACK_SECRET)")
    p.add_argument("--callback-progress", action="store_true", help="with --callback-url: also on every progress change")
    p.add_argument("--callback-events", metavar="EVENTS", default=None,
                   help="with --callback-url: only these events, comma-separated, of " + ", ".join(EVENTS)
                        + " (default: every end)")
    p.add_argument("--deadline", metavar="WHEN", help="stop wanting the songs then: seconds, a duration (10m, 1h30m) "
                   "or a time with a zone; not submitted by then: CANCELLED, uncharged; submitted: TIMED_OUT, charged")
    p.add_argument("--wait", action="store_true", help="wait for the job to end, with a progress bar")
    p.add_argument("--timeout", type=seconds, default=None, metavar="S",
                   help="with --wait: give up waiting after S seconds, S >= 0 (exit 3; the job goes on)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)

    p = sub.add_parser("status", help="show a job")
    p.add_argument("job_id", help="the job id submit printed")
    p.add_argument("--timeline", action="store_true", help="draw the job's states to scale")
    p.add_argument("--json", action="store_true", help=JSON_HELP)

    p = sub.add_parser("wait", help="wait for a job to end")
    p.add_argument("job_id", help="the job id submit printed")
    p.add_argument("--timeout", type=seconds, default=None, metavar="S", help="give up after S seconds, S >= 0 (exit 3)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)

    p = sub.add_parser("cancel", help="cancel a job that has not ended")
    p.add_argument("job_id", help="the job id submit printed")
    p.add_argument("--json", action="store_true", help=JSON_HELP)

    p = sub.add_parser("list", help="list recent jobs still in Redis (live, or ended within SONGQUEUE_JOB_RETENTION), "
                       "newest first")
    p.add_argument("--state", type=upper_choice, choices=[s.value for s in JobState], metavar="STATE",
                   help="only jobs in this state, any case; choices: " + ", ".join(s.value for s in JobState))
    p.add_argument("--archived", action="store_true",
                   help="instead, jobs whose records left Redis, read from their manifests in storage")
    p.add_argument("--limit", type=whole_number(1, 10000), default=50, metavar="N", help="at most N jobs, 1..10000")
    p.add_argument("--json", action="store_true", help=JSON_HELP)

    p = sub.add_parser("fetch", help="copy a job's songs and covers into a folder, with readable names")
    p.add_argument("job_id", help="the job id submit printed")
    p.add_argument("--to", type=Path, required=True, metavar="DIR", help="the folder (created if missing)")
    p.add_argument("--json", action="store_true", help="print the copied paths as JSON")

    p = sub.add_parser("hooks", help="serve the notify hook the gateways call (SONGQUEUE_NOTIFY_HOOK_URL)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=whole_number(0, 65535), default=8809, help="port, 0..65535 (0 picks a free port)")

    p = sub.add_parser("retry", help="run a FAILED or TIMED_OUT job again: a new upstream submit")
    p.add_argument("job_id", help="the job id submit printed")
    p.add_argument("--json", action="store_true", help=JSON_HELP)

    p = sub.add_parser("stats", help="jobs by state, upstream tasks in flight, today's spend, queue depths")
    p.add_argument("--json", action="store_true", help=JSON_HELP)

    p = sub.add_parser("metrics", help="serve Prometheus metrics of jobs, providers, spend and queues")
    p.add_argument("--port", type=whole_number(0, 65535), default=9808, help="port, 0..65535 (0 picks a free port)")
    p.add_argument("--host", "--address", dest="address", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 for every interface, e.g. in a container)")

    p = sub.add_parser("callback-secret", help="print the secret a callback receiver verifies signatures with; "
                       "`rotate ORIGIN` starts its next one, `public-key` prints the v1a key")
    p.add_argument("url", metavar="URL|rotate|public-key",
                   help="the receiver's callback URL (its scheme, host and port choose the secret); `rotate ORIGIN`: "
                        "a new secret for that origin (the old one still signs for SONGQUEUE_CALLBACK_ROTATION_OVERLAP); "
                        "`public-key`: the whpk_ key of SONGQUEUE_CALLBACK_SIGNING_KEY")
    p.add_argument("origin", nargs="?", default=None, metavar="ORIGIN",
                   help="with rotate: the receiver's origin or any URL of it")

    p = sub.add_parser("flower", help="run Flower with basic auth from SONGQUEUE_FLOWER_USER/_PASSWORD")
    p.add_argument("--port", type=whole_number(0, 65535), default=None,
                   help="port, 0..65535 (Flower's default 5555; 0 picks a free port)")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, like the API and metrics; 0.0.0.0 for every interface, "
                        "e.g. in a container)")
    p.add_argument("--insecure", action="store_true", help="run without authentication (trusted networks only)")

    p = sub.add_parser("doctor", help="check settings, Redis, broker, workers, watchdog, storage, providers; "
                       "one line each with a fix (exit 0 only when all pass)")
    p.add_argument("--provider", action="append", choices=sorted(PROVIDERS),
                   help="check only this provider (repeatable; default: every provider)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)

    p = sub.add_parser("completion", help="print a shell completion script: eval \"$(songqueue completion bash)\"")
    p.add_argument("shell", choices=SHELLS, help="the shell")

    playlist_cli.add_parser(sub)
    http_api.add_parser(sub)
    api_keys.add_parser(sub)
    callbacks_cli.add_parser(sub)

    p = sub.add_parser("sandbox", help="run the local gateway (see sandbox/)", add_help=False)
    p.add_argument("sandbox_args", nargs=argparse.REMAINDER)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("songqueue")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sandbox"]:
        # The sandbox is a separate program (the `sandbox` extra): run it in place of this
        # process rather than importing it, so the producer never depends on it.
        os.execv(sys.executable, [sys.executable, "-m", "sandbox", *argv[1:]])
    parser = _parser()
    if not argv:
        parser.print_help()
        return EXIT_OK
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_BAD_INPUT if exc.code else EXIT_OK
    if args.command == "completion":
        print(completion_script(parser, args.shell))
        return EXIT_OK
    if args.command != "doctor":  # the doctor lists them itself
        warn_unknown()
    try:
        code = _COMMANDS[args.command](args)
        sys.stdout.flush()  # a reader that left shows up here, not in the interpreter's exit
        return code
    except BadInput as exc:
        print(f"songqueue: bad input: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except pydantic.ValidationError as exc:
        if exc.title == Settings.__name__:  # SONGQUEUE_* variables or .env, not this command's flags
            print(f"songqueue: bad settings:\n{describe_settings_error(exc)}", file=sys.stderr)
        else:
            print(f"songqueue: bad input:\n{describe_flags(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (JobNotFound, NotReplayable, FlowerAuthMissing) as exc:
        print(f"songqueue: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # `songqueue list | head`: the reader left. Not "cannot reach Redis" (BrokenPipeError
        # is a ConnectionError); quiet, with the shell's SIGPIPE status, and no second error
        # when the interpreter flushes stdout on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError, ConnectionError) as exc:
        print(f"songqueue: cannot reach Redis or the broker: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
