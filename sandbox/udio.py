"""The Udio submit and fetch endpoints, shaped like the gateways' seeds 001/002.

Both dialects (302.ai ``/udio/generate-proxy`` and openai-hk
``/udio/submit/music``) behave identically; the dialect is only recorded, so a
test can prove which path a client used.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, unquote

from sandbox import audio
from sandbox.app import Sandbox
from sandbox.faults import ACCEPTING, Directive
from sandbox.manners import not_found_if_hidden, redirect_if_asked, trickle
from sandbox.tasks import FAIL_REASON, FAILURE, SONGS_PER_TASK, Task, reported_progress, reported_status, song_ready_time, timeline
from sandbox.wire import Request, Response, error, html_error, json_response, lost_answer, malformed

# Titles carry a space, a dash outside ASCII and CJK text on purpose: the
# upstream does too, and a client that builds storage paths from titles or
# decodes song_path must trip over them here, not in production.
TITLES = ("Sandbox Song 1 – 晨光", "Sandbox Song 2 – 夜雨")
# Titles that break a client building storage paths or file names from them.
HOSTILE_TITLES = ("../../etc/passwd", "CON")
LONG_TITLES = ("🎵🔥 emoji only 🎶💥", "雨" * 300)
TAGS = (["sandbox", "electronic", "mandopop", "2010s"], ["sandbox", "ambient", "female vocalist", "ballad"])
LYRICS = (
    "[Verse]\n晨光照进窗台\nSandbox sings the morning in\n[Chorus]\n晨光 晨光\nEvery test begins again",
    "[Verse]\n夜雨敲着屋檐\nSandbox hums the evening out\n[Chorus]\n夜雨 夜雨\nEvery test comes home",
)
ARTIST = "SandboxArtist0001"
USER_ID = "5a4db0c5-0000-4000-8000-5a4db0c50001"

LYRICS_TYPES = ("generate", "user", "instrumental")
MODEL_TYPES = ("udio32-v1.5", "udio130-v1.5")
MODES = ("regular", "precede", "continuation")


def unauthorized(app: Sandbox) -> Response:
    app.stats.count("unauthorized")
    return error(401, "unauthorized", "invalid api key")


def rate_limited(retry_after: bool) -> Response:
    headers = {"Retry-After": "1"} if retry_after else {}
    return error(429, "rate_limited", "too many requests, please retry later", headers)


HTML_RETRY_AFTER = 2  # seconds, for the HTML 429 pages


def rate_limited_html(as_date: bool) -> Response:
    """A front server's 429: an HTML page, Retry-After in seconds or as an HTTP date."""
    response = html_error(429, "429 Too Many Requests")
    response.headers["Retry-After"] = (formatdate(time.time() + HTML_RETRY_AFTER, usegmt=True) if as_date
                                       else str(HTML_RETRY_AFTER))
    return response


def limited(name: str) -> Response | None:
    """The 429 answer a *_429* directive asks for, or None when ``name`` is not one."""
    if name.endswith("_429_html"):
        return rate_limited_html(as_date=False)
    if name.endswith("_429_date"):
        return rate_limited_html(as_date=True)
    if "_429" in name:
        return rate_limited(retry_after=not name.endswith("noretry"))
    return None


def file_name(title: str) -> str:
    """The file name as the upstream writes it: percent-encoded twice."""
    return quote(quote(title, safe=""), safe="") + ".mp3"


def song_title(index: int, task: Task | None = None) -> str:
    titles = TITLES
    if task is not None and task.directives.has("hostile_titles"):
        titles = HOSTILE_TITLES
    elif task is not None and task.directives.has("long_titles"):
        titles = LONG_TITLES
    return titles[(index - 1) % len(titles)]


# --- submit ---------------------------------------------------------------


def _gen_params(body: bytes) -> tuple[dict[str, Any], str]:
    """Parse and check a submit body: (gen_params, notify_hook URL or ""); raise ValueError
    naming what is wrong."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("gen_params"), dict):
        raise ValueError("body must be a JSON object with a gen_params object")
    params: dict[str, Any] = payload["gen_params"]
    hook = payload.get("notify_hook", "")
    if not isinstance(hook, str) or (hook and not hook.startswith(("http://", "https://"))):
        raise ValueError("notify_hook must be an http:// or https:// URL")
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("gen_params.prompt is required and must be a non-empty string")
    lyrics = params.get("lyrics", "")
    if not isinstance(lyrics, str):
        raise ValueError("gen_params.lyrics must be a string")
    lyrics_type = params.get("lyrics_type", "generate")
    if lyrics_type not in LYRICS_TYPES:
        raise ValueError(f"gen_params.lyrics_type must be one of {list(LYRICS_TYPES)}")
    if lyrics_type == "user" and not lyrics.strip():
        raise ValueError("gen_params.lyrics must be non-empty when lyrics_type is user")
    if params.get("model_type", MODEL_TYPES[0]) not in MODEL_TYPES:
        raise ValueError(f"gen_params.model_type must be one of {list(MODEL_TYPES)}")
    config = params.get("config", {})
    if not isinstance(config, dict):
        raise ValueError("gen_params.config must be an object")
    mode = config.get("mode", "regular")
    if mode not in MODES:
        raise ValueError(f"gen_params.config.mode must be one of {list(MODES)}")
    if mode != "regular":
        source = config.get("source")
        if not isinstance(source, dict) or not source.get("song_id"):
            raise ValueError(f"gen_params.config.source.song_id is required when mode is {mode}")
    return params, hook


def submit_fault(fault: Directive) -> Response:
    refused = limited(fault.name)
    if refused is not None:
        return refused
    if fault.name == "submit_500":
        return html_error(500, "502 Bad Gateway")
    if fault.name == "submit_400":
        return error(400, "invalid_request", "sandbox: injected bad request")
    if fault.name == "submit_error":
        return json_response(200, {"code": "error", "message": (fault.value or "").replace("_", " "), "data": None})
    # submit_malformed: a task id that never reaches the client, and no task.
    return malformed({"code": "success", "message": "", "data": "00000000-0000-4000-8000-000000000000"})


def submit(app: Sandbox, req: Request, dialect: str) -> Response:
    app.stats.count("submit_requests")
    if not app.authorized(req.headers):
        return unauthorized(app)
    try:
        params, hook = _gen_params(req.body)
        prompt: str = params["prompt"]
        directives = app.directives_for(prompt, "udio")
    except ValueError as exc:  # DirectiveError is a ValueError
        return error(400, "invalid_request", str(exc))

    seen = app.next_submit(prompt)
    delay = directives.delay("submit_slow", seen)
    if delay:
        app.stats.fault("submit_slow", prompt=prompt)
        time.sleep(delay)
    fault = directives.outcome("submit", seen)
    if fault is not None and fault.name not in ACCEPTING:
        app.stats.fault(fault.name, prompt=prompt)
        return submit_fault(fault)
    cfg = app.config
    if app.chance(cfg.submit_429_rate):
        app.stats.fault("submit_429_rate", prompt=prompt)
        return rate_limited(retry_after=True)
    if app.chance(cfg.submit_500_rate):
        app.stats.fault("submit_500_rate", prompt=prompt)
        return html_error(500, "502 Bad Gateway")

    gen_time = directives.number("gen_time")
    duration = directives.number("duration")
    task = app.tasks.create(
        prompt=prompt,
        gen_params=params,
        dialect=dialect,
        directives=directives,
        generation_time=cfg.generation_time if gen_time is None else gen_time,
        song_duration=cfg.song_duration if duration is None else duration,
        fails=directives.has("failure") or app.chance(cfg.failure_rate),
        size_mb=directives.number("size_mb"),
        notify_hook=hook,
    )
    if hook:
        app.hooks.watch(task)
    app.stats.count("submits", app.stats.submits_by_prompt, prompt)
    return accepted(app, task, fault)


def accepted(app: Sandbox, task: Task, fault: Directive | None) -> Response:
    """The answer to a submit that created ``task``: the task id, unless a directive loses,
    redirects or trickles it (each counted against the task)."""
    if fault is not None:  # accepted, then the answer is lost on the way back
        app.stats.fault(fault.name, task=task.task_id)
        return lost_after_accept(fault.name, task.task_id)
    moved = redirect_if_asked(app, task, "submit_redirect", 307)
    if moved is not None:
        return moved
    answer = json_response(200, {"code": "success", "message": "", "data": task.task_id})
    return trickle(app, answer, task.directives.number("submit_trickle"), "submit_trickle", task=task.task_id)


def lost_after_accept(name: str, task_id: str) -> Response:
    """What the client gets from a submit that created ``task_id`` and lost its answer."""
    if name == "submit_accept_504":
        return html_error(504, "504 Gateway Time-out")
    if name == "submit_accept_4xx":
        return error(400, "error", "upstream request failed, please retry")
    if name == "submit_accept_garbled":
        return malformed({"code": "success", "message": "", "data": task_id})
    return lost_answer(drop=name == "submit_accept_drop")


# --- fetch ------------------------------------------------------------------


def song_duration(task: Task, index: int) -> float:
    claimed = task.directives.number("reported_duration")
    if claimed is not None:
        return claimed
    if task.size_mb is not None:
        return audio.large_mp3(task.size_mb, index).duration
    return audio.song_duration(task.song_duration, index)


def song_paths(app: Sandbox, task: Task, index: int) -> tuple[str, str]:
    base = f"{app.public_url}/files/{task.task_id}/{index}/"
    if task.directives.has("dl_none_mp3"):
        song_path = base + "None.mp3"
    else:
        song_path = base + file_name(song_title(index, task))
    return song_path, f"{app.public_url}/images/{task.task_id}/{index}"


def _lyrics(task: Task, index: int) -> str:
    lyrics_type = task.gen_params.get("lyrics_type", "generate")
    if lyrics_type == "instrumental":
        return ""
    if lyrics_type == "user":
        return str(task.gen_params.get("lyrics", ""))
    return LYRICS[(index - 1) % len(LYRICS)]


def song_object(app: Sandbox, task: Task, index: int, ready: bool) -> dict[str, Any]:
    """One song with the seed's full field set (a gateway's published example), in its key order.

    A song not yet ready (only seen with ``stagger``) keeps every key but has
    ``finished: false``, empty paths and a null duration.
    """
    tags = list(TAGS[(index - 1) % len(TAGS)])
    song_path, image_path = song_paths(app, task, index) if ready else ("", "")
    created = datetime.fromtimestamp(song_ready_time(task, index) if ready else task.submit_time, UTC)
    return {
        "id": task.song_ids[index - 1],
        "tags": tags,
        "liked": False,
        "likes": 0,
        "plays": 0,
        "title": song_title(index, task),
        "artist": ARTIST,
        "lyrics": _lyrics(task, index),
        "prompt": task.prompt,
        "user_id": USER_ID,
        "disliked": False,
        "duration": song_duration(task, index) if ready else None,
        "error_id": None,
        "finished": ready,
        "song_path": song_path,
        "user_tags": [],
        "created_at": created.isoformat(),
        "error_code": None,
        "error_type": None,
        "image_path": image_path,
        "video_path": None,
        "attribution": "",
        "description": "",
        "publishable": True,
        "artist_image": image_path,
        "error_detail": None,
        "published_at": None,
        "generation_id": task.task_id,
        "replaced_tags": {", ".join(tags): {"tags": tags, "type": "tags"}},
        "original_song_path": None,
        "audio_conditioning_type": None,
    }


def task_payload(app: Sandbox, task: Task, now: float) -> dict[str, Any]:
    """The full fetch answer for ``task`` at time ``now``."""
    line = timeline(task, now)
    songs: list[dict[str, Any]] = []
    if line.finished_songs:
        # Once any song is ready, list all of them; unready ones as pending.
        songs = [song_object(app, task, i, i in line.finished_songs) for i in range(1, SONGS_PER_TASK + 1)]
    data: dict[str, Any] = {
        "task_id": task.task_id,
        "notify_hook": task.notify_hook,
        "action": "udio-generate",
        "status": reported_status(task, line),
        "fail_reason": FAIL_REASON if line.status == FAILURE else "",
        "submit_time": int(task.submit_time),
        "start_time": line.start_time,
        "finish_time": line.finish_time,
    }
    progress = reported_progress(task, line)
    if progress is not None:
        data["progress"] = f"{progress}%"
    if task.directives.has("omit_running_songs") and not line.terminal:
        pass  # the contract says the container may be missing while running
    elif task.directives.has("flat"):
        data["songs"] = songs
    else:
        data["data"] = {"songs": songs}
    return {"code": "success", "message": "", "data": data}


def fetch(app: Sandbox, req: Request, task_id: str) -> Response:
    app.stats.count("fetch_requests")
    if not app.authorized(req.headers):
        return unauthorized(app)
    task = app.tasks.get(unquote(task_id))
    if task is None:
        return error(404, "not_found", f"task not found: {unquote(task_id)}")
    app.stats.bump(app.stats.fetches_by_task, task.task_id)
    gone = not_found_if_hidden(app, task, time.time())
    if gone is not None:
        return gone
    moved = redirect_if_asked(app, task, "fetch_redirect", 302)
    if moved is not None:
        return moved
    seen = app.tasks.next_fetch(task)
    delay = task.directives.delay("fetch_slow", seen)
    if delay:
        app.stats.fault("fetch_slow", task=task.task_id)
        time.sleep(delay)
    payload = task_payload(app, task, time.time())
    fault = task.directives.outcome("fetch", seen)
    if fault is None and app.chance(app.config.fetch_429_rate):
        fault = Directive("fetch_429_rate", None)
    if fault is None and app.chance(app.config.fetch_500_rate):
        fault = Directive("fetch_500_rate", None)
    if fault is not None:
        app.stats.fault(fault.name, task=task.task_id)
        refused = limited(fault.name)
        if refused is not None:
            return refused
        if fault.name.startswith("fetch_500"):
            return html_error(500, "500 Internal Server Error")
        return malformed(payload)
    app.stats.count("fetches")
    answer = json_response(200, payload)
    return trickle(app, answer, task.directives.number("fetch_trickle"), "fetch_trickle", task=task.task_id)

