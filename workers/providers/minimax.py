"""MiniMax through 302.ai or its own API (docs/upstream-contract.md, "MiniMax"): synchronous, one paid call.

`POST {base}{SONGQUEUE_MINIMAX_GENERATE_PATH}`, as multipart/form-data for music-01 (its
reference form) or as JSON for the current models (music-1.5 to music-2.6), answers with
the song itself: `data.audio` is hex-encoded audio or a URL (which expires after about 12 hours,
so it is downloaded at once like any other result URL). A non-zero
`base_resp.status_code` is the upstream saying no, in its own words (`status_msg`).
Parsing is a plain function so the documented bodies can be tested directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import requests
from pydantic import SecretStr

from producer.core.models.minimax import ACCOMPANIMENT, PROMPT_MODELS, RATE_LIMIT_CODES, REFERENCE_MODEL, base_resp
from producer.core.settings import Settings
from workers.providers.base import InlineAudio, UpstreamSong
from workers.providers.minimax_hex import HexAudioSink
from workers.upstream.errors import PermanentError, TransientError
from workers.upstream.http_client import bearer_headers, call_json, new_session

MAX_TITLE_CHARS = 80
# base_resp codes worth another try: rate limits, and MiniMax's own trouble (1000 unknown,
# 1001 timeout, 1024 internal error). Every other non-zero code is a refusal.
TRANSIENT_CODES = RATE_LIMIT_CODES | {1000, 1001, 1024}


class MiniMaxProvider:
    name = "minimax"
    price_factors: Mapping[str, float] = {REFERENCE_MODEL: 1.0, **dict.fromkeys(PROMPT_MODELS, 1.0)}

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        session: requests.Session,
        timeout: float,
        max_json_bytes: int,
        generate_path: str = "/minimaxi/v1/music_generation",
        max_audio_bytes: int = 100 * 1024 * 1024,
        spool_dir: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.generate_path = "/" + generate_path.lstrip("/")
        self._api_key = api_key
        self.session = session
        self.timeout = timeout
        self.max_json_bytes = max_json_bytes
        self.max_audio_bytes = max_audio_bytes
        self.spool_dir = spool_dir

    def generate(self, request: dict[str, Any]) -> list[UpstreamSong]:
        if request.get("model", REFERENCE_MODEL) == REFERENCE_MODEL:
            # (None, value) makes a plain form field rather than a file part.
            sent: dict[str, Any] = {"files": {name: (None, str(value)) for name, value in request.items()}}
        else:
            sent = {"json": request}
        # Hex audio is decoded into a spool file as it arrives, never held whole in memory.
        sink = HexAudioSink(max_audio_bytes=self.max_audio_bytes, max_rest_bytes=self.max_json_bytes,
                            spool_dir=self.spool_dir or None)
        try:
            body = call_json(
                self.session, "POST", self.base_url + self.generate_path, **sent,
                headers=bearer_headers(self._api_key),
                timeout=self.timeout, max_bytes=self.max_json_bytes, sink=sink,
            )
            return [parse_generation(body, str(request.get("lyrics", "")), inline=sink.audio)]
        except BaseException:
            sink.discard()
            raise


def from_settings(settings: Settings) -> MiniMaxProvider:
    minimax = settings.provider("minimax")
    return MiniMaxProvider(
        base_url=minimax.base_url,
        api_key=minimax.api_key,
        session=new_session(),
        # The song comes back in the answer of this one call.
        timeout=minimax.deadline,
        # Hex audio bypasses this cap (it is streamed to a spool file under the download cap);
        # a URL answer or a text value that is not hex is held, and so bounded by it.
        max_json_bytes=settings.max_json_bytes,
        generate_path=minimax.generate_path,
        max_audio_bytes=settings.max_download_bytes,
        spool_dir=settings.spool_dir,
    )


def parse_generation(body: Any, lyrics: str = "", inline: InlineAudio | None = None) -> UpstreamSong:
    """The one song of a generation answer, or the upstream's reason for not giving one.

    `inline` is data.audio's hex already decoded into a spool file (`HexAudioSink`);
    `body` then holds an empty string in its place.

    Everything after a well-formed success is permanent: the call was billed, and asking
    again would bill again.
    """
    status = base_resp(body)
    if status is None:
        raise TransientError("upstream_malformed", "MiniMax's answer has no base_resp", maybe_accepted=True)
    code, message = status
    if code in RATE_LIMIT_CODES:
        raise TransientError("upstream_rate_limited", f"MiniMax is rate limiting: {message} (status_code {code})")
    if code in TRANSIENT_CODES:
        raise TransientError("upstream_unavailable", f"MiniMax had trouble: {message} (status_code {code})")
    if code != 0:
        raise PermanentError("upstream_rejected",
                             f"MiniMax refused the request: {message or 'no status_msg'} (status_code {code})")
    if inline is not None:
        return _song(body, lyrics, "minimax-" + inline.sha256[:16], audio_file=inline)
    data = body.get("data")
    # The URL answer is in data.audio; some clients read data.audio_url, and 302.ai sends both.
    audio = (data.get("audio") or data.get("audio_url")) if isinstance(data, dict) else None
    if not isinstance(audio, str) or not audio.strip():
        shown = f" (data.status {data.get('status')!r})" if isinstance(data, dict) else ""
        raise PermanentError("upstream_no_songs", f"MiniMax answered success without audio{shown}",
                             maybe_accepted=True)
    audio = audio.strip()
    song_path, audio_bytes = "", None
    if audio[:8].lower().startswith(("http://", "https://")):
        song_path = audio
    else:
        try:
            audio_bytes = bytes.fromhex(audio)
        except ValueError:
            raise PermanentError("upstream_malformed", "MiniMax's data.audio is neither a URL nor hex-encoded audio",
                                 maybe_accepted=True) from None
    return _song(body, lyrics, "minimax-" + hashlib.sha256(audio.encode()).hexdigest()[:16],
                 song_path=song_path, audio_bytes=audio_bytes)


def _song(body: dict[str, Any], lyrics: str, fallback_id: str, *, song_path: str = "",
          audio_bytes: bytes | None = None, audio_file: InlineAudio | None = None) -> UpstreamSong:
    # MiniMax names no song; its trace id (when given) ties the song to the upstream's logs.
    return UpstreamSong(
        id=str(body.get("trace_id") or "") or fallback_id,
        title=title_from_lyrics(lyrics),
        song_path=song_path,
        image_path="",  # MiniMax makes no cover
        duration=_duration(body.get("extra_info")),
        lyrics=lyrics,
        tags=[],
        finished=True,
        audio_bytes=audio_bytes,
        audio_file=audio_file,
    )


def title_from_lyrics(lyrics: str) -> str:
    """The first sung line: MiniMax gives no title, and a song without one is hard to find."""
    for line in lyrics.removeprefix(ACCOMPANIMENT).removesuffix(ACCOMPANIMENT).splitlines():
        # Section markers ("[Verse]") are structure, not words.
        if line.strip() and not (line.strip().startswith("[") and line.strip().endswith("]")):
            return line.strip()[:MAX_TITLE_CHARS]
    return ""


def _duration(extra: Any) -> float | None:
    # Milliseconds: extra_info.music_duration (the current models), audio_length (music-01).
    length = None
    if isinstance(extra, dict):
        length = extra.get("music_duration") if extra.get("music_duration") is not None else extra.get("audio_length")
    if isinstance(length, bool) or not isinstance(length, (int, float)) or length <= 0:
        return None
    return length / 1000
