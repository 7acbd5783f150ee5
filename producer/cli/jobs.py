"""`songqueue submit|status|wait|cancel|list|retry|fetch`: one job at a time."""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import lru_cache

from producer.cli.exit_codes import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_UNAVAILABLE,
    BadInput,
)
from producer.cli.no_worker_hint import NoWorkerHint
from producer.cli.progress import ProgressDisplay
from producer.cli.request_flags import (
    flag,
    prompt_request,
    reference_request,
    refuse_flags_of_other_providers,
    song_to_extend,
    takes_references,
)
from producer.cli.timeline import timeline
from producer.client.minimax_upload import UploadError
from producer.client.songqueue import SongQueue, WaitTimeout
from producer.core import deadlines
from producer.core.callbacks import CallbackUrlError, check_callback_url, check_events
from producer.core.enqueue import MAX_KEY_CHARS
from producer.core.models.job_record import JobRecord, JobState
from producer.core.models.providers import PROVIDERS, provider_spec
from producer.core.models.text_rules import check_label
from producer.core.objects.links import ObjectLinks
from producer.core.request_fingerprint import IdempotencyConflict
from producer.core.settings import get_settings
from producer.core.url_guard import callback_policy


def _callback_events(args: argparse.Namespace) -> list[str] | None:
    if args.callback_events is None:
        return None
    try:
        return check_events([n.strip() for n in args.callback_events.split(",") if n.strip()])
    except ValueError as exc:
        raise BadInput(str(exc).replace("callback_events", "--callback-events", 1)) from None


def _callback_url(args: argparse.Namespace) -> str | None:
    if args.callback_url is None:
        if args.callback_progress:
            raise BadInput("--callback-progress: only with --callback-url")
        if args.callback_events is not None:
            raise BadInput("--callback-events: only with --callback-url")
        return None
    settings = get_settings()
    try:
        url = check_callback_url(args.callback_url, callback_policy(settings)).url
    except CallbackUrlError as exc:
        raise BadInput(f"--callback-url: {exc.rule}") from None
    if not settings.callback_secret.get_secret_value():
        # Workers never send an unsigned callback: without the secret it would be dropped silently.
        raise BadInput(f"--callback-url {args.callback_url!r}: needs SONGQUEUE_CALLBACK_SECRET, which is not set "
                       "(set it on this machine and on every worker)")
    return url


def submit(args: argparse.Namespace) -> int:
    refuse_flags_of_other_providers(args)
    try:
        check_label("--idempotency-key", args.idempotency_key, MAX_KEY_CHARS)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    callback_url = _callback_url(args)
    if args.deadline is not None:
        try:
            deadlines.seconds_from(args.deadline)  # before any upload: bad input costs nothing
        except ValueError as exc:
            raise BadInput(f"--deadline: {exc}") from None
    spec = provider_spec(args.provider)
    if takes_references(spec):
        data, uploads = reference_request(args, spec)
        queue = SongQueue()
        # Uploaded here, not by a worker: the files are on this machine (producer/client/minimax_upload.py).
        for field, (path, purpose) in uploads.items():
            try:
                data[field] = queue.upload_reference(path, purpose)
            except UploadError as exc:
                if exc.refused:
                    raise BadInput(f"{flag(field)}-file: {exc}") from exc
                print(f"songqueue: {flag(field)}-file: {exc}", file=sys.stderr)
                return EXIT_UNAVAILABLE
        request = spec.request_model.model_validate(data)
    elif args.extend_job is not None:
        queue = SongQueue()
        song_id = song_to_extend(queue, args.extend_job, 1 if args.song is None else args.song)
        request = spec.request_model.model_validate(prompt_request(args, spec, song_id))
    else:
        request = spec.request_model.model_validate(prompt_request(args, spec))
        queue = SongQueue()
    try:
        handle = queue.submit(request, provider=args.provider, idempotency_key=args.idempotency_key,
                              callback_url=callback_url, callback_progress=args.callback_progress,
                              callback_events=_callback_events(args),
                              deadline=args.deadline)
    except IdempotencyConflict as exc:
        raise BadInput(str(exc).replace("idempotency_key", "--idempotency-key", 1)) from None

    if not args.wait:
        if args.json:
            print(json.dumps(queue.view(handle.id), ensure_ascii=False))
        else:
            print(handle.id)
        return EXIT_OK
    if not args.json:
        print(f"job {handle.id} queued", file=sys.stderr)
    return _wait_and_report(queue, handle.id, args.timeout, args.json)


def wait(args: argparse.Namespace) -> int:
    return _wait_and_report(SongQueue(), args.job_id, args.timeout, args.json)


def _wait_and_report(queue: SongQueue, job_id: str, timeout: float | None, as_json: bool) -> int:
    display = ProgressDisplay(sys.stderr)
    hint = NoWorkerHint(queue, display)
    try:
        record = queue.wait(job_id, timeout=timeout, on_progress=hint.update)
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


def status(args: argparse.Namespace) -> int:
    record = SongQueue().status(args.job_id)
    if args.timeline and not args.json:
        print(f"job {record.id}: {record.state.value} ({record.progress}%)")
        print("\n".join(timeline(record, time.time())))
        return EXIT_OK
    _print_record(record, args.json)
    return EXIT_OK


def cancel(args: argparse.Namespace) -> int:
    queue = SongQueue()
    before = queue.status(args.job_id)
    record = queue.cancel(args.job_id)
    cancelled = record.state == JobState.CANCELLED and not before.state.terminal
    reason = None if cancelled else f"not cancelled: the job had already ended {record.state.value}"
    if args.json:
        print(json.dumps({**record.public_view(link=_links().link), "cancelled": cancelled, "reason": reason},
                         ensure_ascii=False))
    else:
        print(f"job {record.id}: {record.state.value}" + (f" ({reason})" if reason else ""))
    return EXIT_OK if cancelled else EXIT_FAILED


def fetch(args: argparse.Namespace) -> int:
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
    if args.json:
        print(json.dumps({"job_id": record.id, "state": record.state.value, "paths": [str(p) for p in paths],
                          "expected": record.expected_assets()}, ensure_ascii=False))
    else:
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


def list_jobs(args: argparse.Namespace) -> int:
    """Records in Redis; with --archived, the manifests of jobs Redis has let go."""
    queue = SongQueue()
    state = JobState(args.state) if args.state else None
    if args.archived:
        records = [r for r in queue.list_archived(args.limit) if state is None or r.state == state]
    else:
        records = queue.list(state, args.limit)
    if args.json:
        print(json.dumps([r.public_view(link=_links().link) for r in records], ensure_ascii=False))
        return EXIT_OK
    now = time.time()
    print(f"{'JOB':<32}  {'STATE':<11} {'PROG':>4}  {'AGE':>6}  {'PROVIDER/MODEL':<22}  PROMPT")
    for r in records:
        text = " ".join(str(r.request.get(provider_spec(r.provider).text_field, "") if r.provider in PROVIDERS
                            else "").split())
        error = f"  [{r.error.code}]" if r.error else ""
        print(f"{r.id:<32}  {r.state.value:<11} {r.progress:>3}%  {_age(now - r.created_at):>6}  "
              f"{r.provider + '/' + r.model:<22}  {text[:40]}{error}")
    return EXIT_OK


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{max(seconds, 0):.0f}s"


def retry(args: argparse.Namespace) -> int:
    record = SongQueue().retry(args.job_id)
    runs = len(record.history)
    if args.json:
        print(json.dumps(record.public_view(link=_links().link), ensure_ascii=False))
        return EXIT_OK
    print(f"job {record.id}: {record.state.value} again (run {runs + 1}; the earlier run is kept in its history)")
    return EXIT_OK
