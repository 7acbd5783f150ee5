"""The console's playlists page: the definitions, their latest runs, each run's files and songs.

It shows what `GET /v1/playlists` answers (producer/api/playlists.py `overview`), for a key
with `read`. The songs' players and the M3U8/JSON links are API routes, reached with the
console's cookie; a run's jobs belong to tenant `default`, so a key of another tenant
without `admin` sees the runs but its players answer 404, as the API would.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from producer.api.console.routes import _key, _page, _to_login
from producer.api.playlists import overview
from producer.api.state import api_state

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/playlists")
def playlists_page(request: Request) -> Response:
    key = _key(request)
    if key is None:
        return _to_login()
    return _page(request, "playlists.html", key, **overview(api_state(request)))
