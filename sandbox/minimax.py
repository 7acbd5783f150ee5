"""MiniMax music-01 as 302.ai relays it (docs/upstream-contract.md, "MiniMax music-01"): upload and generation.

Both endpoints take multipart/form-data and answer in MiniMax's own envelope; a refusal
is HTTP 200 with a non-zero ``base_resp.status_code``, as MiniMax does. The generation
answers in the same request (no task, no polling) with a real MP3 from ``audio.py``:
hex-encoded by default, or as a URL under ``/minimax/audio/``.

Reference ids are issued by the upload endpoint and checked by the generation endpoint,
so a client that skipped the upload (or mixed up voice and instrumental) is refused.

Directives ride in the lyrics, the one free text every client forwards:
  sandbox:url                   data.audio is a URL to the MP3 instead of its hex
  sandbox:minimax_error[=CODE]  base_resp CODE (default 1026, sensitive content) with its message
  sandbox:duration=S            the song's length in seconds (default: --song-duration)
  sandbox:gen_time=S            the answer takes S seconds (generation happens in the call)
  sandbox:minimax_1002[=N], sandbox:minimax_1039[=N]   the first N calls with these lyrics
                                answer that rate limit (nothing generated), then success
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from sandbox import audio
from sandbox.app import Sandbox
from sandbox.faults import ACCEPTING, DirectiveError
from sandbox.manners import redirect_if_asked, trickle
from sandbox.udio import unauthorized
from sandbox.wire import Request, Response, json_response, lost_answer

MODEL = "music-01"
JSON_MODELS = ("music-2.6", "music-2.5+", "music-2.5", "music-2.0", "music-1.5")
MAX_LYRICS_CHARS = 200
INVALID_PARAMS = 2013
# MiniMax's own status codes and messages (its API documentation).
STATUS_MESSAGES = {
    1002: "rate limit exceeded",
    1039: "token limit exceeded, please retry later",
    1004: "authentication failed",
    1008: "insufficient balance",
    1026: "input new_sensitive: the lyrics contain sensitive content",
    INVALID_PARAMS: "invalid params",
}
DEFAULT_ERROR = 1026
# What an upload's purpose yields: MiniMax splits a whole song into both references.
PURPOSE_IDS = {"voice": ("voice_id",), "instrumental": ("instrumental_id",), "song": ("voice_id", "instrumental_id")}
ID_PREFIX = {"voice_id": "vocal", "instrumental_id": "instrumental"}
REFERENCE_FIELD = {"refer_voice": "voice_id", "refer_instrumental": "instrumental_id"}
SAMPLE_RATE = 44100
BITRATE = 128_000

_PARAM = re.compile(r'\b(name|filename)="([^"]*)"')


@dataclass(frozen=True)
class Part:
    value: bytes
    filename: str | None

    @property
    def text(self) -> str:
        return self.value.decode("utf-8", errors="replace")


class InvalidParams(ValueError):
    """A request MiniMax would answer with status 2013."""


def parse_form(req: Request) -> dict[str, Part]:
    """Split a multipart/form-data body on its boundary (which never occurs in a part)."""
    content_type = req.headers.get("content-type", "")
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/form-data") or match is None:
        raise InvalidParams("the body must be multipart/form-data")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, Part] = {}
    for raw in req.body.split(delimiter)[1:]:
        if raw.startswith(b"--"):
            break  # the closing delimiter
        head, sep, content = raw.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        params = dict(_PARAM.findall(head.decode("utf-8", errors="replace")))
        if not sep or "name" not in params:
            raise InvalidParams("a multipart part has no Content-Disposition name")
        fields[params["name"]] = Part(content.removesuffix(b"\r\n"), params.get("filename"))
    return fields


def _answer(code: int, message: str = "", **fields: Any) -> Response:
    return json_response(200, {**fields, "trace_id": uuid.uuid4().hex,
                               "base_resp": {"status_code": code, "status_msg": message or "success"}})


def _invalid(reason: str) -> Response:
    return _answer(INVALID_PARAMS, f"{STATUS_MESSAGES[INVALID_PARAMS]}, {reason}")


def _is_audio(data: bytes) -> bool:
    mp3 = data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)
    return mp3 or (data[:4] == b"RIFF" and data[8:12] == b"WAVE")


# --- upload -------------------------------------------------------------------


def upload(app: Sandbox, req: Request) -> Response:
    app.stats.count("minimax_upload_requests")
    if not app.authorized(req.headers):
        return unauthorized(app)
    moved = redirect_if_asked(app, None, "upload_redirect", 302, location=app.config.upload_redirect)
    if moved is not None:
        return moved
    try:
        form = parse_form(req)
    except InvalidParams as exc:
        return _invalid(str(exc))
    purpose = form["purpose"].text if "purpose" in form else ""
    if purpose not in PURPOSE_IDS:
        return _invalid(f"purpose: must be one of {sorted(PURPOSE_IDS)}")
    file = form.get("file")
    if file is None or file.filename is None or not file.value:
        return _invalid("file: a non-empty audio file is required")
    if not _is_audio(file.value):
        return _invalid("file: not an audio file (mp3 or wav)")
    issued = {name: f"{ID_PREFIX[name]}-{uuid.uuid4().hex}" for name in PURPOSE_IDS[purpose]}
    with app.lock:
        for name, reference in issued.items():
            app.minimax_references[reference] = name
    app.stats.count("minimax_uploads")
    return _answer(0, **issued)


# --- generation ----------------------------------------------------------------


def _checked_request(app: Sandbox, form: dict[str, Part]) -> tuple[str, dict[str, str]]:
    """(lyrics, references) of a valid generation request; raises InvalidParams."""
    model = form["model"].text if "model" in form else ""
    if model != MODEL:
        raise InvalidParams(f"model: must be {MODEL}")
    lyrics = form["lyrics"].text if "lyrics" in form else ""
    if not lyrics.strip():
        raise InvalidParams("lyrics: required")
    length = len(unicodedata.normalize("NFC", lyrics))
    if length > MAX_LYRICS_CHARS:
        raise InvalidParams(f"lyrics: at most {MAX_LYRICS_CHARS} characters, got {length}")
    references = {field: form[field].text for field in REFERENCE_FIELD if field in form}
    if not references:
        raise InvalidParams("refer_voice or refer_instrumental: at least one is required")
    with app.lock:
        for field, reference in references.items():
            if app.minimax_references.get(reference) != REFERENCE_FIELD[field]:
                raise InvalidParams(f"{field}: unknown {REFERENCE_FIELD[field]} {reference!r}")
    return lyrics, references


# Rate limits that pass: the first N calls with the same lyrics are refused, unbilled.
PASSING_LIMITS = {"minimax_1002": 1002, "minimax_1039": 1039}


def _generate_or_inject(app: Sandbox, directives: Any, text: str) -> Response | None:
    """An injected rate limit (``minimax_1002``/``minimax_1039``, counted per lyrics), the
    generation delay, then an injected `minimax_error` answer if the directives ask for one:
    the same for the music-01 form and the 2.x JSON body."""
    fault = directives.outcome("submit", app.next_submit(text))
    if fault is not None and fault.name in PASSING_LIMITS:
        app.stats.fault(fault.name, prompt=text)
        code = PASSING_LIMITS[fault.name]
        return _answer(code, STATUS_MESSAGES[code])
    gen_time = directives.number("gen_time")
    if gen_time:
        time.sleep(gen_time)
    if directives.has("minimax_error"):
        app.stats.fault("minimax_error")
        code = int(directives.number("minimax_error") or DEFAULT_ERROR)
        return _answer(code, STATUS_MESSAGES.get(code, f"sandbox: injected error {code}"))
    return None


def generate(app: Sandbox, req: Request) -> Response:
    app.stats.count("minimax_generation_requests")
    if not app.authorized(req.headers):
        return unauthorized(app)
    if req.headers.get("content-type", "").lower().startswith("application/json"):
        return generate_json(app, req)
    try:
        lyrics, _ = _checked_request(app, parse_form(req))
        directives = app.directives_for(lyrics, "minimax")
    except (InvalidParams, DirectiveError) as exc:
        return _invalid(str(exc))
    refused = _generate_or_inject(app, directives, lyrics)
    if refused is not None:
        return refused
    duration = directives.number("duration") or app.config.song_duration
    mp3 = audio.song_mp3(duration, 1)
    audio_id = uuid.uuid4().hex
    if directives.has("url"):
        with app.lock:
            app.minimax_audio[audio_id] = duration
        answer = f"{app.public_url}/minimax/audio/{audio_id}.mp3"
    else:
        answer = mp3.hex()
    app.stats.count("minimax_generations", app.stats.generations_by_lyrics, lyrics)
    extra = {"audio_length": round(audio.song_duration(duration, 1) * 1000), "audio_sample_rate": SAMPLE_RATE,
             "audio_size": len(mp3), "bitrate": BITRATE, "audio_format": "mp3"}
    return _generated(app, directives, lyrics, _answer(0, data={"audio": answer, "status": 2}, extra_info=extra))


def _generated(app: Sandbox, directives: Any, text: str, answer: Response) -> Response:
    """The answer to a generation that happened (and is billed): ``answer``, unless a
    directive loses it, redirects it or makes it trickle (each counted against ``text``)."""
    for lost in ACCEPTING:
        if directives.has(lost):
            app.stats.fault(lost, prompt=text)
            return lost_answer(drop=lost == "submit_accept_drop")
    url = directives.text("submit_redirect")
    if url:
        moved = redirect_if_asked(app, None, "submit_redirect", 307, location=url, prompt=text)
        if moved is not None:
            return moved
    return trickle(app, answer, directives.number("submit_trickle"), "submit_trickle", prompt=text)


def _checked_json(body: Any) -> tuple[str, str]:
    """(model, the text directives are read from) of a valid JSON request (music-1.5+)."""
    if not isinstance(body, dict):
        raise InvalidParams("the body must be a JSON object")
    model = body.get("model")
    if model not in JSON_MODELS:
        raise InvalidParams(f"model: must be one of {list(JSON_MODELS)}")
    lyrics, prompt = body.get("lyrics", ""), body.get("prompt", "")
    if not isinstance(lyrics, str) or not isinstance(prompt, str):
        raise InvalidParams("lyrics and prompt must be strings")
    if len(lyrics) > 3500 or len(prompt) > 2000:
        raise InvalidParams("lyrics: at most 3500 characters; prompt: at most 2000")
    if body.get("is_instrumental") and not prompt.strip():
        raise InvalidParams("prompt: required when is_instrumental")
    if not body.get("is_instrumental") and not lyrics.strip() and not body.get("lyrics_optimizer"):
        raise InvalidParams("lyrics: required for a song with vocals unless lyrics_optimizer")
    if body.get("output_format", "hex") not in ("hex", "url"):
        raise InvalidParams("output_format: must be hex or url")
    return model, f"{prompt} {lyrics}"


def generate_json(app: Sandbox, req: Request) -> Response:
    """music-1.5 to music-2.6: a JSON body; `output_format` url or hex (the default);
    `extra_info.music_duration` in milliseconds. Directives in the prompt or the lyrics."""
    try:
        body = json.loads(req.body.decode("utf-8"))
        model, text = _checked_json(body)
        directives = app.directives_for(text.strip(), "minimax")
    except (ValueError, InvalidParams, DirectiveError) as exc:  # JSONDecodeError is a ValueError
        return _invalid(str(exc))
    refused = _generate_or_inject(app, directives, text.strip())
    if refused is not None:
        return refused
    duration = directives.number("duration") or app.config.song_duration
    mp3 = audio.song_mp3(duration, 1)
    data: dict[str, Any] = {"status": 2}
    if body.get("output_format") == "url" or directives.has("url"):
        audio_id = uuid.uuid4().hex
        with app.lock:
            app.minimax_audio[audio_id] = duration
        data["audio"] = data["audio_url"] = f"{app.public_url}/minimax/audio/{audio_id}.mp3"  # 302.ai sends both
    else:
        data["audio"] = mp3.hex()
    app.stats.count("minimax_generations", app.stats.generations_by_lyrics, text.strip())
    extra = {"music_duration": round(audio.song_duration(duration, 1) * 1000), "music_sample_rate": SAMPLE_RATE,
             "music_channel": 2, "bitrate": BITRATE, "music_size": len(mp3), "model": model}
    return _generated(app, directives, text.strip(), _answer(0, data=data, extra_info=extra))


def audio_file(app: Sandbox, req: Request, audio_id: str) -> Response:
    """A URL answer's MP3, on the sandbox's stand-in for MiniMax's CDN."""
    app.stats.count("download_requests")
    with app.lock:
        duration = app.minimax_audio.get(audio_id)
    if duration is None:
        return json_response(404, {"code": "not_found", "message": f"no audio {audio_id}", "data": None})
    response = Response(200, audio.song_mp3(duration, 1), "audio/mpeg")
    response.on_complete = lambda: app.stats.count("downloads", app.stats.downloads_by_task, audio_id)
    return response
