"""MiniMax music-01 through 302.ai (docs/upstream-contract.md, "MiniMax music-01"): synchronous, one paid call.

`POST {base}/minimaxi/v1/music_generation` as multipart/form-data answers with the song
itself: `data.audio` is hex-encoded audio or a URL (which expires after about 12 hours,
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

from producer.client.minimax_upload import RATE_LIMIT_CODES, base_resp
from producer.models.minimax import ACCOMPANIMENT
from workers.providers.base import UpstreamSong
from workers.upstream.errors import PermanentError, TransientError
from workers.upstream.http_client import call_json

GENERATE_PATH = "/minimaxi/v1/music_generation"
MAX_TITLE_CHARS = 80


class MiniMaxProvider:
    name = "minimax"
    price_factors: Mapping[str, float] = {"music-01": 1.0}

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        session: requests.Session,
        timeout: float,
        max_json_bytes: int,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.session = session
        self.timeout = timeout
        self.max_json_bytes = max_json_bytes

    def generate(self, request: dict[str, Any]) -> list[UpstreamSong]:
        # (None, value) makes a plain form field rather than a file part.
        form = {name: (None, str(value)) for name, value in request.items()}
        body = call_json(
            self.session, "POST", self.base_url + GENERATE_PATH, files=form,
            headers={"Authorization": f"Bearer {self._api_key.get_secret_value()}", "Accept": "application/json"},
            timeout=self.timeout, max_bytes=self.max_json_bytes,
        )
        return [parse_generation(body, str(request.get("lyrics", "")))]


def parse_generation(body: Any, lyrics: str = "") -> UpstreamSong:
    """The one song of a generation answer, or the upstream's reason for not giving one.

    Everything after a well-formed success is permanent: the call was billed, and asking
    again would bill again.
    """
    status = base_resp(body)
    if status is None:
        raise TransientError("upstream_malformed", "MiniMax's answer has no base_resp", maybe_accepted=True)
    code, message = status
    if code in RATE_LIMIT_CODES:
        raise TransientError("upstream_rate_limited", f"MiniMax is rate limiting: {message} (status_code {code})")
    if code != 0:
        raise PermanentError("upstream_rejected",
                             f"MiniMax refused the request: {message or 'no status_msg'} (status_code {code})")
    data = body.get("data")
    audio = data.get("audio") if isinstance(data, dict) else None
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
    # MiniMax names no song; its trace id (when given) ties the song to the upstream's logs.
    song_id = str(body.get("trace_id") or "") or "minimax-" + hashlib.sha256(audio.encode()).hexdigest()[:16]
    return UpstreamSong(
        id=song_id,
        title=title_from_lyrics(lyrics),
        song_path=song_path,
        image_path="",  # MiniMax makes no cover
        duration=_duration(body.get("extra_info")),
        lyrics=lyrics,
        tags=[],
        finished=True,
        audio_bytes=audio_bytes,
    )


def title_from_lyrics(lyrics: str) -> str:
    """The first sung line: MiniMax gives no title, and a song without one is hard to find."""
    for line in lyrics.removeprefix(ACCOMPANIMENT).removesuffix(ACCOMPANIMENT).splitlines():
        if line.strip():
            return line.strip()[:MAX_TITLE_CHARS]
    return ""


def _duration(extra: Any) -> float | None:
    # extra_info.audio_length is in milliseconds in MiniMax's own API (unconfirmed through 302.ai).
    length = extra.get("audio_length") if isinstance(extra, dict) else None
    if isinstance(length, bool) or not isinstance(length, (int, float)) or length <= 0:
        return None
    return length / 1000
