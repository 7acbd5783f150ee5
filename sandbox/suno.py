"""Suno as the task relays serve it (new-api, Suno-API): submit, single fetch, batch fetch.

Shares the task table, timeline, files and fault directives with Udio. Directives ride in
the free text every client forwards: `gpt_description_prompt` in inspiration mode, else
`tags` and `prompt` (the lyrics). On top of Udio's:
  clip_array      the single fetch answers with only the clip array (Suno-API's shape)
  batch_absent=N  the batch fetch leaves the task out of its first N answers that name it
Clips pass submitted -> queued -> streaming -> complete (or error). While streaming a
clip's `audio_url` is a temporary stream under `/suno/stream` (counted in
`suno_stream_requests`, so a test can prove nobody downloaded one); at complete it is
the MP3 under `/files/`.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote

from sandbox import audio
from sandbox.app import Sandbox
from sandbox.faults import ACCEPTING, Directive
from sandbox.manners import hidden_from, not_found_if_hidden, redirect_if_asked, trickle
from sandbox.tasks import FAIL_REASON, FAILURE, SONGS_PER_TASK, Task, reported_progress, reported_status, timeline
from sandbox.udio import TAGS, accepted, limited, rate_limited, song_duration, song_paths, song_title, submit_fault, unauthorized
from sandbox.wire import Request, Response, error, html_error, json_response, malformed

MODELS = ("chirp-v3-0", "chirp-v3-5", "chirp-v4", "chirp-auk", "chirp-crow")
ACTION = "MUSIC"  # the one action this relay's tasks have; a batch asking another finds none
ACTIONS = ("MUSIC", "LYRICS")
QUEUED_UNTIL = 20  # percent of the generation time a started clip stays queued before streaming
STREAM_BYTES = 4096


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def _submit_params(raw: bytes) -> tuple[dict[str, Any], str]:
    """The checked submit body and the text its directives are read from."""
    body = _body(raw)
    for name in ("gpt_description_prompt", "prompt", "title", "tags", "continue_clip_id", "task_id"):
        if name in body and not isinstance(body[name], str):
            raise ValueError(f"{name} must be a string")
    if body.get("mv", MODELS[1]) not in MODELS:
        raise ValueError(f"mv must be one of {list(MODELS)}")
    described = body.get("gpt_description_prompt", "").strip()
    text = described or f"{body.get('tags', '')} {body.get('prompt', '')}"
    if not text.strip():
        raise ValueError("gpt_description_prompt, or prompt/tags in custom mode, is required")
    if "continue_clip_id" in body and not isinstance(body.get("continue_at"), (int, float)):
        raise ValueError("continue_at (seconds) is required with continue_clip_id")
    return body, text


def submit(app: Sandbox, req: Request) -> Response:
    app.stats.count("submit_requests")
    if not app.authorized(req.headers):
        return unauthorized(app)
    try:
        params, text = _submit_params(req.body)
        directives = app.directives_for(text, "suno")
        if directives.text("status_before") == "UNKNOWN":
            raise ValueError("sandbox:status_before=UNKNOWN: UNKNOWN is final on Suno relays (new-api)")
    except ValueError as exc:
        return error(400, "invalid_request", str(exc))
    seen = app.next_submit(text)
    delay = directives.delay("submit_slow", seen)
    if delay:
        app.stats.fault("submit_slow", prompt=text)
        time.sleep(delay)
    fault = directives.outcome("submit", seen)
    if fault is not None and fault.name not in ACCEPTING:
        app.stats.fault(fault.name, prompt=text)
        return submit_fault(fault)
    cfg = app.config
    if app.chance(cfg.submit_429_rate):
        app.stats.fault("submit_429_rate", prompt=text)
        return rate_limited(retry_after=True)
    gen_time, duration = directives.number("gen_time"), directives.number("duration")
    task = app.tasks.create(
        prompt=text, gen_params=params, dialect="suno", directives=directives,
        generation_time=cfg.generation_time if gen_time is None else gen_time,
        song_duration=cfg.song_duration if duration is None else duration,
        fails=directives.has("failure") or app.chance(cfg.failure_rate),
        size_mb=directives.number("size_mb"),
    )
    app.stats.count("submits", app.stats.submits_by_prompt, text)
    return accepted(app, task, fault)


def _clip(app: Sandbox, task: Task, index: int, now: float) -> dict[str, Any]:
    line = timeline(task, now)
    clip_id = task.song_ids[index - 1]
    if index in line.finished_songs:
        status = "complete"
    elif line.terminal and line.status == FAILURE:
        status = "error"
    elif not line.start_time:
        status = "submitted"
    else:
        status = "queued" if line.progress < QUEUED_UNTIL else "streaming"
    audio_url = image_url = ""
    if status == "complete":
        audio_url, image_url = song_paths(app, task, index)
    elif status == "streaming":
        audio_url = f"{app.public_url}/suno/stream?item_id={clip_id}"
    tags = TAGS[(index - 1) % len(TAGS)]
    params = task.gen_params
    return {
        "id": clip_id, "title": song_title(index, task), "status": status,
        "audio_url": audio_url, "image_url": image_url,
        "image_large_url": image_url + "?large=1" if image_url else "",
        "video_url": "", "model_name": params.get("mv", MODELS[1]), "major_model_version": "v3",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(task.submit_time)),
        "metadata": {
            "tags": ", ".join(tags), "prompt": params.get("prompt", "") if "prompt" in params else "[Verse]\nsandbox",
            "duration": song_duration(task, index) if status == "complete" else None,
            "error_type": "sandbox" if status == "error" else None,
            "error_message": FAIL_REASON if status == "error" else None,
        },
    }


def task_object(app: Sandbox, task: Task, now: float) -> dict[str, Any]:
    line = timeline(task, now)
    obj: dict[str, Any] = {
        "task_id": task.task_id, "action": ACTION, "status": reported_status(task, line),
        "fail_reason": FAIL_REASON if line.status == FAILURE else "",
        "submit_time": int(task.submit_time), "start_time": line.start_time, "finish_time": line.finish_time,
    }
    # new-api only ever says 0% or 100%, unless the task's progress model says otherwise
    progress = reported_progress(task, line) if task.directives.has("progress") else (
        100 if line.terminal else 0)
    if progress is not None:
        obj["progress"] = f"{progress}%"
    obj["data"] = [_clip(app, task, i, now) for i in range(1, SONGS_PER_TASK + 1)]
    return obj


def _fetch_fault(app: Sandbox, task: Task, seen: int) -> Directive | None:
    delay = task.directives.delay("fetch_slow", seen)
    if delay:
        app.stats.fault("fetch_slow", task=task.task_id)
        time.sleep(delay)
    fault = task.directives.outcome("fetch", seen)
    if fault is None and app.chance(app.config.fetch_429_rate):
        fault = Directive("fetch_429_rate", None)
    if fault is None and app.chance(app.config.fetch_500_rate):
        fault = Directive("fetch_500_rate", None)
    return fault


def _faulty(app: Sandbox, fault: Directive, payload: Any, task: Task) -> Response:
    app.stats.fault(fault.name, task=task.task_id)
    refused = limited(fault.name)
    if refused is not None:
        return refused
    if fault.name.startswith("fetch_500"):
        return html_error(500, "500 Internal Server Error")
    return malformed(payload)


def fetch(app: Sandbox, req: Request, task_id: str) -> Response:
    app.stats.count("fetch_requests")
    if not app.authorized(req.headers):
        return unauthorized(app)
    task = app.tasks.get(unquote(task_id))
    if task is None or task.dialect != "suno":
        return error(400, "task_not_exist", f"task not found: {unquote(task_id)}")
    app.stats.bump(app.stats.fetches_by_task, task.task_id)
    refused = not_found_if_hidden(app, task, time.time()) or redirect_if_asked(app, task, "fetch_redirect", 302)
    if refused is not None:
        return refused
    seen = app.tasks.next_fetch(task)
    obj = task_object(app, task, time.time())
    payload = {"code": "success", "message": "", "data": obj["data"] if task.directives.has("clip_array") else obj}
    fault = _fetch_fault(app, task, seen)
    if fault is not None:
        return _faulty(app, fault, payload, task)
    app.stats.count("fetches")
    answer = json_response(200, payload)
    return trickle(app, answer, task.directives.number("fetch_trickle"), "fetch_trickle", task=task.task_id)


def _omitted(app: Sandbox, task: Task, now: float) -> bool:
    """Whether a batch answer naming ``task`` leaves it out (counted): not known (yet, or
    any more), or a batch_absent / batch_absent_every directive."""
    named = app.tasks.next_batch(task)
    why: str | None = None
    if hidden_from(app, task, now) is not None:
        why = "hidden"  # counted by hidden_from under its own name
    elif named <= (task.directives.number("batch_absent") or 0):
        why = "batch_absent"
    else:
        every = task.directives.number("batch_absent_every")
        if every and named % int(every) == 0:
            why = "batch_absent_every"
    if why is None:
        return False
    app.stats.count("batch_omitted")
    if why != "hidden":
        app.stats.fault(why, task=task.task_id)
    return True


def fetch_many(app: Sandbox, req: Request) -> Response:
    """`POST /suno/fetch {"ids": [...]}`: the known tasks, shuffled; `data: null` when none."""
    app.stats.count("fetch_requests")
    app.stats.count("batch_fetch_requests")
    if not app.authorized(req.headers):
        return unauthorized(app)
    try:
        body = _body(req.body)
        ids, action = body.get("ids"), body.get("action", ACTION)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError("ids must be a list of task ids")
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {list(ACTIONS)}")
    except ValueError as exc:
        return error(400, "invalid_request", str(exc))
    cap = app.config.batch_id_cap
    if cap and len(ids) > cap:
        app.stats.fault("batch_id_cap")
        return error(400, "invalid_request", f"too many ids: at most {cap} per fetch, got {len(ids)}")
    app.stats.batch(ids)
    now = time.time()
    found = (app.tasks.get(i) for i in dict.fromkeys(ids))
    # Tasks of another action (lyrics tasks when MUSIC is asked) are not matched, as unknown ids.
    tasks = [t for t in found if t is not None and t.dialect == "suno" and action == ACTION]
    for task in tasks:  # a relay that moved one task's record moves the whole answer
        moved = redirect_if_asked(app, task, "fetch_redirect", 302)
        if moved is not None:
            return moved
    fault: tuple[Directive, Task] | None = None
    answered = []
    for task in tasks:
        app.stats.bump(app.stats.fetches_by_task, task.task_id)
        if _omitted(app, task, now):
            continue
        seen = app.tasks.next_fetch(task)
        answered.append(task)
        if fault is None:
            this = _fetch_fault(app, task, seen)
            fault = (this, task) if this is not None else None
    objects = [task_object(app, t, now) for t in answered]
    with app.lock:
        app.rng.shuffle(objects)
    payload = {"code": "success", "message": "", "data": objects or None}
    if fault is not None:
        return _faulty(app, fault[0], payload, fault[1])
    app.stats.count("fetches")
    answer = json_response(200, payload)
    slowest = max((t.directives.number("fetch_trickle") or 0 for t in answered), default=0)
    return trickle(app, answer, slowest, "fetch_trickle")


def stream(app: Sandbox, req: Request) -> Response:
    """A clip's temporary stream: the start of an MP3, as a live stream would give."""
    app.stats.count("suno_stream_requests")
    return Response(200, audio.song_mp3(30.0, 1)[:STREAM_BYTES], "audio/mpeg")
