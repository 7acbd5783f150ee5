"""/v1/playlists: the playlist definitions (SONGQUEUE_PLAYLISTS_DIR), manual runs, a run's state and files.

Playlists are the operator's, not a tenant's: listing and reading runs needs `read`,
starting a run needs `admin`, and a run's jobs belong to the default tenant, as when
`songqueue playlist run` starts one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from producer.api.auth import needs
from producer.api.problems import Problem, documented
from producer.api.state import ApiState, api_state
from producer.core.models.playlist_run import PlaylistRun, run_view
from producer.core.objects.links import ObjectUnreadable, file_path
from producer.core.playlists.definition import load_folder
from producer.core.playlists.start import playlist_store, start_run
from producer.core.store.api_keys import ApiKey

router = APIRouter(prefix="/v1/playlists", tags=["playlists"])
_ERRORS = documented(401, 403, 404, 422)
_FILE_ERRORS = documented(401, 403, 404, 422, 503)


def _view(api: ApiState, run: PlaylistRun) -> dict[str, Any]:
    view = run_view(run, [api.queue.store.get(i) for i in run.job_ids])
    base = f"/v1/playlists/{run.playlist}/runs/{run.id}"
    # Paths on this API, not on the server.
    view["m3u8"] = f"{base}/playlist.m3u8" if run.m3u8 else None
    view["json"] = f"{base}/playlist.json" if run.document else None
    for song, kept in zip(view.get("songs", []), run.songs):
        song.pop("path", None)  # server paths and bucket keys are the operator's, not the tenant's
        song.pop("uri", None)
        song["audio"] = f"/v1/jobs/{kept.job_id}/songs/{kept.song_index}/audio"
    return view


def overview(api: ApiState, recent: int = 5) -> dict[str, Any]:
    """The definitions with their latest runs (this listing and the console's playlists page)."""
    definitions, problems = load_folder(api.settings.playlists_dir)
    store = playlist_store(api.queue)
    return {
        "playlists": [{"name": name, "provider": d.provider, "schedule": d.cron or d.every, "timezone": d.timezone,
                       "prompts": len(d.prompts), "runs": [_view(api, r) for r in store.recent(name, recent)]}
                      for name, d in sorted(definitions.items())],
        "problems": [str(p) for p in problems],
    }


@router.get("", responses=_ERRORS)
def list_playlists(request: Request, key: Annotated[ApiKey, Depends(needs("read"))]) -> dict[str, Any]:
    return overview(api_state(request))


@router.post("/{name}/runs", status_code=201, responses={**_ERRORS, **documented(409)})
def start(name: str, request: Request, response: Response,
          key: Annotated[ApiKey, Depends(needs("admin"))]) -> dict[str, Any]:
    """Start a run of the playlist now: 201 with the run and its `Location`."""
    api = api_state(request)
    definitions, _ = load_folder(api.settings.playlists_dir)
    if name not in definitions:
        raise Problem(404, f"no playlist {name}")
    run, _ = start_run(api.queue, definitions[name])
    response.headers["Location"] = f"/v1/playlists/{name}/runs/{run.id}"
    return _view(api, run)


def _run(api: ApiState, name: str, run_id: str) -> PlaylistRun:
    run = playlist_store(api.queue).get(run_id)
    if run is None or run.playlist != name:
        raise Problem(404, f"no run {run_id} of playlist {name}")
    return run


@router.get("/{name}/runs/{run_id}", responses=_ERRORS)
def get_run(name: str, run_id: str, request: Request, key: Annotated[ApiKey, Depends(needs("read"))]) -> dict[str, Any]:
    api = api_state(request)
    return _view(api, _run(api, name, run_id))


@router.get("/{name}/runs/{run_id}/{file}", response_class=Response, responses=_FILE_ERRORS)
def run_file(name: str, run_id: str, file: Literal["playlist.m3u8", "playlist.json"], request: Request,
             key: Annotated[ApiKey, Depends(needs("read"))]) -> Response:
    api = api_state(request)
    run = _run(api, name, run_id)
    obj = run.m3u8 if file == "playlist.m3u8" else run.document
    if obj is None:
        raise Problem(404, f"run {run_id} has no {file} yet")
    if urlparse(obj.uri).scheme == "s3":
        try:
            return RedirectResponse(api.queue.link(obj), status_code=307)
        except ObjectUnreadable as exc:
            raise Problem(503, f"storage cannot serve downloads now: {exc}") from None
    return FileResponse(file_path(obj.uri), media_type=obj.content_type, headers={"ETag": f'"{obj.sha256}"'})
