"""The CDN side: song MP3s under ``/files/`` and covers under ``/images/``.

Song files are matched on the raw request path, so a client that decodes the
twice-encoded ``song_path`` even once gets a 404 (and is counted in
``downloads_bad_path``), as it would on the real storage bucket.
"""

from __future__ import annotations

import contextlib
import time
from urllib.parse import unquote

from sandbox import audio
from sandbox.app import Sandbox
from sandbox.cover import png_cover
from sandbox.faults import Directive
from sandbox.manners import redirect_if_asked
from sandbox.tasks import SONGS_PER_TASK, Task, timeline
from sandbox.udio import file_name, song_title
from sandbox.wire import Request, Response, html_error

KIB = 1024
# What dl_fake_mp3 serves: an empty ID3v2.4 header (so it passes a first-bytes check)
# over an error page, with no MPEG frame sync anywhere in it.
FAKE_MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"<html><body>Service temporarily unavailable</body></html>\n" * 200


def _storage_error(status: int, code: str, message: str) -> Response:
    """Object-store style XML error, like storage.googleapis.com answers."""
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return Response(status, body, "application/xml; charset=UTF-8")


def _no_such_key() -> Response:
    return _storage_error(404, "NoSuchKey", "The specified key does not exist.")


def _fully_decoded(name: str) -> str:
    # A client that sent raw UTF-8 bytes arrives here as latin-1 text.
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        name = name.encode("latin-1").decode("utf-8")
    for _ in range(4):
        decoded = unquote(name)
        if decoded == name:
            break
        name = decoded
    return name


def _ready_task(app: Sandbox, task_id: str, index: str) -> tuple[Task, int] | None:
    task = app.tasks.get(unquote(task_id))
    n = int(index)
    if task is None or not 1 <= n <= SONGS_PER_TASK:
        return None
    app.stats.bump(app.stats.download_requests_by_task, task.task_id)
    if n not in timeline(task, time.time()).finished_songs:
        return None
    return task, n


def _serve(app: Sandbox, task: Task, file_key: str, response: Response) -> Response:
    """Apply the task's download faults to a ready file response."""
    moved = redirect_if_asked(app, task, "dl_redirect", 302)
    if moved is not None:
        return moved
    seen = app.tasks.next_download(task, file_key)
    fault = task.directives.outcome("download", seen)
    if fault is None and app.chance(app.config.dl_500_rate):
        fault = Directive("dl_500_rate", None)
    if fault is not None:
        app.stats.fault(fault.name, task=task.task_id)
        if fault.name == "dl_403":
            return _storage_error(403, "AccessDenied", "Access denied. Anonymous caller does not have storage.objects.get access.")
        if fault.name == "dl_404":
            return _no_such_key()
        if fault.name == "dl_html":
            return html_error(200, "Service temporarily unavailable")
        if fault.name.startswith("dl_500"):
            return html_error(500, "500 Internal Server Error")
        if fault.name == "dl_truncate":
            response.cut_after, response.cut_mode = response.content_length // 2, "close"
        elif fault.name == "dl_reset":
            response.cut_after, response.cut_mode = min(response.content_length // 4, 64 * KIB), "reset"
    kbps = task.directives.number("dl_slow")
    if kbps:
        response.throttle_bytes_per_s = kbps * KIB
        app.stats.fault("dl_slow", task=task.task_id)  # counted, so a test can prove its slow download landed
    if response.cut_after is None:
        task_id = task.task_id
        response.on_complete = lambda: app.stats.count("downloads", app.stats.downloads_by_task, task_id)
    return response


def song(app: Sandbox, req: Request, task_id: str, index: str, name: str) -> Response:
    app.stats.count("download_requests")
    found = _ready_task(app, task_id, index)
    if found is None:
        return _no_such_key()
    task, n = found
    if task.directives.has("dl_none_mp3"):
        return _no_such_key()  # the placeholder path some gateways hand out
    title = song_title(n, task)
    if name != file_name(title):
        if _fully_decoded(name) == title + ".mp3":
            app.stats.count("downloads_bad_path")
        return _no_such_key()
    if task.directives.has("dl_fake_mp3"):
        response = Response(200, FAKE_MP3, "audio/mpeg")
    elif task.size_mb is not None:
        big = audio.large_mp3(task.size_mb, n)
        response = Response(200, content_type="audio/mpeg", chunks=big.chunks, length=big.size)
    else:
        response = Response(200, audio.song_mp3(task.song_duration, n), "audio/mpeg")
    return _serve(app, task, f"song/{n}", response)


def cover(app: Sandbox, req: Request, task_id: str, index: str) -> Response:
    app.stats.count("download_requests")
    found = _ready_task(app, task_id, index)
    if found is None:
        return _no_such_key()
    task, n = found
    return _serve(app, task, f"cover/{n}", Response(200, png_cover(task.task_id, n), "image/png"))
