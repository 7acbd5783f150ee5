"""POST /v1/uploads: a MiniMax reference file (multipart), forwarded to MiniMax's upload API.

The answer's `id` is what a MiniMax job then names in `refer_voice` (purpose `voice`) or
`refer_instrumental` (purpose `instrumental`). Nothing is stored here: the file goes
straight on to MiniMax, as `songqueue submit --refer-voice-file` does from a shell
(producer/client/minimax_upload.py). The body is capped apart from the other routes'
(`songqueue api --max-upload`, default 20 MiB; the edge, producer/api/edge.py, checks the key
from the head first, then answers 413 past the cap as the body streams into the form spool).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import BaseModel, Field

from producer.api.auth import needs
from producer.api.problems import Problem, documented
from producer.api.state import api_state
from producer.client.minimax_upload import UploadError, upload_file
from producer.core.store.api_keys import ApiKey

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])
PATH = "/v1/uploads"
DEFAULT_MAX_UPLOAD = 20 << 20
# Which request field names the id each purpose issues.
REFER_FIELD = {"voice": "refer_voice", "instrumental": "refer_instrumental"}


class UploadView(BaseModel):
    id: str = Field(description="the upstream's voice_id or instrumental_id")
    purpose: Literal["voice", "instrumental"]
    refer_field: Literal["refer_voice", "refer_instrumental"] = Field(
        description="the MiniMax request field that takes this id")


def _upstream_problem(exc: UploadError) -> Problem:
    """The upstream's refusal of the file is the caller's 422; anything else is our 502.

    The message is the cleaned one UploadError carries (no escapes, bounded), never the file.
    """
    if exc.refused and exc.http_status not in (401, 403):  # 401/403: our MiniMax key, not the file
        return Problem(422, "MiniMax refused the file", errors=[("file", str(exc))])
    return Problem(502, str(exc))


@router.post("", status_code=201, response_model=UploadView,
             responses=documented(400, 401, 403, 413, 422, 502))
def upload(request: Request, key: Annotated[ApiKey, Depends(needs("submit"))],
           file: Annotated[UploadFile, File(description="the reference audio (mp3 or wav)")],
           purpose: Annotated[Literal["voice", "instrumental"], Form()]) -> dict[str, Any]:
    """Upload a reference audio file to MiniMax; 201 with the id a MiniMax job refers to."""
    api = api_state(request)
    size = file.size if file.size is not None else 0
    if size == 0:
        raise Problem(422, "the request breaks a rule", errors=[("file", "must not be empty")])
    if size > api.max_upload_bytes:
        raise Problem(413, f"the file is over {api.max_upload_bytes} bytes")
    try:
        reference = upload_file(api.settings, file.filename or "reference", file.file, purpose)
    except UploadError as exc:
        raise _upstream_problem(exc) from None
    return {"id": reference, "purpose": purpose, "refer_field": REFER_FIELD[purpose]}
