"""Upload a reference audio file to MiniMax and get the id a generation request refers to.

This runs at the producer, before anything is enqueued: the file is on the caller's
machine, which the workers cannot see, and a job message must carry ids, never file
bodies. Uploading is not billed as a generation (it is not in the submit ledger); a
failed upload leaves nothing behind in songqueue.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import IO, Literal, get_args

import requests

from producer.core.models.minimax import RATE_LIMIT_CODES, base_resp
from producer.core.models.text_rules import clean_text
from producer.core.settings import Settings

UPLOAD_PATH = "/minimaxi/v1/music_upload"
Purpose = Literal["voice", "instrumental"]
PURPOSES: tuple[str, ...] = get_args(Purpose)
ID_FIELD: dict[str, str] = {"voice": "voice_id", "instrumental": "instrumental_id"}


class UploadError(Exception):
    """`refused`: the upstream said no (bad file, bad key); otherwise it could not be reached."""

    def __init__(self, message: str, refused: bool, http_status: int | None = None) -> None:
        super().__init__(message)
        self.refused = refused
        # The upstream's HTTP status when it was an error status (401: our key, not the file).
        self.http_status = http_status


def upload_reference(settings: Settings, path: Path, purpose: Purpose) -> str:
    """POST `path` to the upload API; return its voice_id or instrumental_id."""
    with path.open("rb") as body:
        return upload_file(settings, path.name, body, purpose)


def upload_file(settings: Settings, filename: str, body: IO[bytes], purpose: Purpose) -> str:
    """POST an open file (named `filename`) to the upload API; the HTTP API's uploads come here."""
    minimax = settings.provider("minimax")
    url = minimax.base_url.rstrip("/") + UPLOAD_PATH
    headers = {"Authorization": f"Bearer {minimax.api_key.get_secret_value()}"}
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    session = requests.Session()
    session.trust_env = False  # an environment proxy would see the Authorization header
    try:
        with session:
            response = session.post(
                url, headers=headers, data={"purpose": purpose},
                files={"file": (filename, body, content_type)},
                timeout=(10.0, settings.http_timeout),
                # Never followed: a redirect's target is a URL nobody configured
                # (docs/outbound-urls.md), and the file would go there too.
                allow_redirects=False,
            )
    except requests.RequestException as exc:
        raise UploadError(f"could not reach the MiniMax upload API at {url}: {type(exc).__name__}",
                          refused=False) from exc
    if 300 <= response.status_code < 400:
        raise UploadError(f"the MiniMax upload API answered HTTP {response.status_code}, a redirect, which "
                          "songqueue does not follow", refused=False, http_status=response.status_code)
    if response.status_code == 429 or response.status_code >= 500:
        raise UploadError(f"the MiniMax upload API answered HTTP {response.status_code}; try again later",
                          refused=False, http_status=response.status_code)
    if response.status_code >= 400:
        # Described, never quoted: the page's bytes are not ours to pass on.
        raise UploadError(f"the MiniMax upload API refused the file (HTTP {response.status_code} with a body of "
                          f"{len(response.content)} bytes)", refused=True, http_status=response.status_code)
    try:
        answer = response.json()
    except ValueError:
        raise UploadError("the MiniMax upload API answered something that is not JSON", refused=False) from None
    status = base_resp(answer)
    if status is None:
        raise UploadError("the MiniMax upload API's answer has no base_resp", refused=False)
    code, message = status
    if code != 0:
        raise UploadError(f"the MiniMax upload API refused the file: {clean_text(message)} (status_code {code})",
                          refused=code not in RATE_LIMIT_CODES)
    reference = answer.get(ID_FIELD[purpose])
    if not isinstance(reference, str) or not reference:
        raise UploadError(f"the MiniMax upload API's answer has no {ID_FIELD[purpose]}", refused=False)
    return reference
