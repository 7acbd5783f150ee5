"""GET /v1/jobs/{id}/songs/{n}/audio|cover: a song's stored MP3 or cover.

File storage: the bytes, with Content-Type, ETag (the stored sha256) and range requests
(Starlette's FileResponse), so an `<audio>` element can seek. S3: a 307 to a presigned URL
valid for SONGQUEUE_LINK_EXPIRY seconds, so the bytes never pass through the API.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from producer.api.auth import needs, visible_job
from producer.api.problems import Problem, documented
from producer.api.state import api_state
from producer.core.objects.links import ObjectUnreadable, file_path
from producer.core.store.api_keys import ApiKey

router = APIRouter(prefix="/v1/jobs", tags=["songs"])


@router.get("/{job_id}/songs/{n}/{asset}", response_class=Response,
            responses={200: {"content": {"audio/mpeg": {}, "image/*": {}}, "description": "the stored bytes"},
                       206: {"description": "a byte range of them"},
                       307: {"description": "S3 storage: a presigned URL"},
                       **documented(401, 403, 404, 416, 422, 503)})
def song_asset(job_id: str, n: Annotated[int, Path(ge=1, le=100)], asset: Literal["audio", "cover"],
               request: Request, key: Annotated[ApiKey, Depends(needs("read"))]) -> Response:
    api = api_state(request)
    record = visible_job(api, key, job_id)
    song = record.songs[n - 1] if n <= len(record.songs) else None
    obj = getattr(song, asset) if song is not None else None
    if obj is None:
        raise Problem(404, f"job {job_id} has no stored {asset} for song {n}")
    if urlparse(obj.uri).scheme == "s3":
        try:
            return RedirectResponse(api.queue.link(obj), status_code=307)
        except ObjectUnreadable as exc:
            raise Problem(503, f"storage cannot serve downloads now: {exc}") from None
    path = file_path(obj.uri)
    if not path.is_file():
        raise Problem(404, f"the stored {asset} of song {n} is missing from storage")
    return FileResponse(path, media_type=obj.content_type, headers={"ETag": f'"{obj.sha256}"'},
                        filename=f"{job_id}-song-{n}{path.suffix}", content_disposition_type="inline")
