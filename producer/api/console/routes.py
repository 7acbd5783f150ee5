"""The console's pages: log in with a key, the jobs table, a job's page, the submit form.

Logging in opens a server-side session whose id goes into an HttpOnly, SameSite=Strict
cookie (producer/api/console/sessions.py), so the pages, and the `<audio>`, `<img>` and
EventSource they hold, reach the API as that key; every POST carries the session's CSRF
token. What a page shows is what the key may see through the API: the same tenant rule,
and the actions it offers are the API's own routes (`ACTIONS`), with their scopes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from producer.api import jobs
from producer.api.console import sessions
from producer.api.console.forms import field_errors, form_inputs, submit_body
from producer.api.console.runs import runs_of
from producer.api.edge import required_scope_of
from producer.api.jobs import submit_job
from producer.api.problems import Problem, pydantic_errors
from producer.api.schemas import SubmitJob
from producer.api.state import api_state
from producer.core.models.job_record import JobRecord, JobState
from producer.core.models.job_states import EDGES
from producer.core.models.providers import PROVIDERS
from producer.core.store import endpoints
from producer.core.store.api_keys import ApiKey
from producer.core.store.console_sessions import ConsoleSession

HERE = Path(__file__).parent
router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")
static = StaticFiles(directory=HERE / "static")
_SUBMIT = TypeAdapter(SubmitJob)
_TABLE_ROWS = 200


def _api_route(endpoint: Callable[..., Any]) -> Any:
    return next(r for r in jobs.router.routes if getattr(r, "endpoint", None) is endpoint)


# The console's buttons are the API's routes: the same function runs, so the same scope,
# tenant and state rules hold. Offered when the key holds the route's scope and the job's
# state has an edge of that step (producer/core/models/job_states.py).
ACTIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "cancel": (jobs.cancel, required_scope_of(_api_route(jobs.cancel)) or "admin"),
    "retry": (jobs.retry, required_scope_of(_api_route(jobs.retry)) or "admin"),
}
_ACTION_FROM: dict[str, frozenset[JobState]] = {
    name: frozenset(e.source for e in EDGES if e.step == name) for name in ACTIONS}


def actions_for(key: ApiKey, record: JobRecord) -> list[str]:
    """The actions the API would let this key take on this job now."""
    return [name for name, (_, scope) in ACTIONS.items() if key.allows(scope) and record.state in _ACTION_FROM[name]]


def _key(request: Request) -> ApiKey | None:
    found = sessions.current(request)
    return found[0] if found is not None and found[0].allows("read") else None


def _to_login() -> RedirectResponse:
    return RedirectResponse("/console/login", status_code=303)


def _visible(key: ApiKey, record: JobRecord | None) -> bool:
    return record is not None and ("admin" in key.scopes or record.tenant == key.tenant)


def _page(request: Request, name: str, key: ApiKey | None, **context: Any) -> HTMLResponse:
    found = sessions.current(request) if key is not None else None
    csrf = found[1].csrf if found is not None else ""
    # The banner counts disabled callback origins only, naming none: they may be other tenants' receivers.
    queue = api_state(request).queue
    disabled = endpoints.disabled_count(queue.store.redis, queue.settings.key_prefix) if key else 0
    return templates.TemplateResponse(request, name, {"key": key, "csrf": csrf, "csrf_field": sessions.CSRF_FIELD,
                                                      "states": [s.value for s in JobState],
                                                      "disabled_endpoints": disabled, **context})


async def _posted(request: Request) -> tuple[ApiKey, ConsoleSession, dict[str, str]]:
    """The session's key and the posted form, once its CSRF token checks out (403 otherwise)."""
    found = sessions.current(request)
    if found is None:
        raise Problem(403, "not logged in to the console (or the session ended): log in again")
    form = {k: str(v) for k, v in (await request.form()).items()}
    sessions.check_csrf(found[1], form.get(sessions.CSRF_FIELD))
    return found[0], found[1], form


@router.get("")
def home() -> RedirectResponse:
    return RedirectResponse("/console/jobs", status_code=303)


@router.get("/login")
def login_form(request: Request) -> Response:
    token = sessions.login_token(request)
    return sessions.with_login_cookie(request, _page(request, "login.html", None, error=None, login_csrf=token), token)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    sessions.check_login_token(request, form.get(sessions.CSRF_FIELD))
    api_key = str(form.get("api_key", "")).strip()
    key = api_state(request).keys.authenticate(api_key) if api_key else None
    if key is None or not key.allows("read"):
        token = sessions.login_token(request)
        page = _page(request, "login.html", None, error="unknown or revoked key, or a key without the read scope",
                     login_csrf=token)
        return sessions.with_login_cookie(request, page, token)
    response = RedirectResponse("/console/jobs", status_code=303)
    sessions.log_in(request, response, key)
    return response


@router.post("/logout")
async def logout(request: Request) -> RedirectResponse:
    await _posted(request)
    response = _to_login()
    sessions.log_out(request, response)
    return response


def _text(record: JobRecord) -> str:
    spec = PROVIDERS.get(record.provider)
    return str(record.request.get(spec.text_field, "")) if spec else ""


@router.get("/jobs")
def jobs_page(request: Request, state: str = "", provider: str = "", error: str = "", q: str = "") -> Response:
    key = _key(request)
    if key is None:
        return _to_login()
    needle = q.strip().lower()
    rows = []
    wanted = JobState(state) if state in {s.value for s in JobState} else None
    codes: set[str] = set()
    for record in api_state(request).queue.store.list(wanted, _TABLE_ROWS):
        if not _visible(key, record):
            continue
        code = record.error.code if record.error else ""
        if code:
            codes.add(code)
        text = _text(record)
        if (needle and not (record.id.startswith(needle) or needle in text.lower())) \
                or (provider and record.provider != provider) or (error and code != error):
            continue
        rows.append({"id": record.id, "state": record.state.value, "progress": record.progress, "provider": record.provider,
                     "error": code, "text": text, "age": _age(time.time() - record.created_at), "tenant": record.tenant})
    return _page(request, "jobs.html", key, rows=rows, state=state, provider=provider, error=error, q=q,
                 providers=sorted(PROVIDERS), codes=sorted(codes | ({error} if error else set())))


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at)) if at is not None else ""


@router.get("/jobs/{job_id}")
def job_page(job_id: str, request: Request) -> Response:
    key = _key(request)
    if key is None:
        return _to_login()
    record = api_state(request).queue.store.get(job_id)
    if record is None or not _visible(key, record):
        raise Problem(404, f"no job {job_id}")
    last = {a.delivery: i for i, a in enumerate(record.callbacks)}  # a replay button on each event's latest attempt
    return _page(request, "job.html", key, job=record, text=_text(record), runs=runs_of(record),
                 actions=actions_for(key, record), deadline=_when(record.cancel_after),
                 expires=_when(record.expires_at), can_replay=key.allows(REPLAY_SCOPE),
                 replay_rows=set(last.values()))


# Replay is the API's route too: its scope, its tenant rule (404), its one attempt.
REPLAY_SCOPE = required_scope_of(_api_route(jobs.replay_callback)) or "admin"


@router.post("/jobs/{job_id}/callbacks/{delivery}/replay")
async def replay_callback(job_id: str, delivery: str, request: Request) -> Response:
    key, _, _ = await _posted(request)
    if not key.allows(REPLAY_SCOPE):
        raise Problem(403, f"this key lacks the {REPLAY_SCOPE!r} scope")
    await run_in_threadpool(jobs.replay_callback, job_id, delivery, request, key)
    return RedirectResponse(f"/console/jobs/{job_id}", status_code=303)


@router.post("/jobs/{job_id}/{action}")
async def job_action(job_id: str, action: str, request: Request) -> Response:
    key, _, _ = await _posted(request)
    if action not in ACTIONS:
        raise Problem(404, f"no action {action}")
    endpoint, scope = ACTIONS[action]
    if not key.allows(scope):
        raise Problem(403, f"this key lacks the {scope!r} scope")
    # The API's own route (its tenant and state rules: 404, 409), in the thread pool as FastAPI runs it.
    await run_in_threadpool(endpoint, job_id, request, key)
    return RedirectResponse(f"/console/jobs/{job_id}", status_code=303)


@router.get("/submit")
def submit_form(request: Request) -> Response:
    key = _key(request)
    if key is None:
        return _to_login()
    return _page(request, "submit.html", key, forms=form_inputs(), errors=[], field_errors={}, values={},
                 provider="udio")


@router.post("/submit")
async def submit(request: Request) -> Response:
    key, _, form = await _posted(request)
    if not key.allows("submit"):
        raise Problem(403, "this key lacks the 'submit' scope")
    provider = form.get("provider", "")
    try:
        body = _SUBMIT.validate_python(submit_body(provider, form))
        record, _ = submit_job(api_state(request), key, body)
    except pydantic.ValidationError as exc:
        errors = pydantic_errors(exc.errors())
    except Problem as exc:
        errors = exc.errors or [("", exc.detail)]
    else:
        return RedirectResponse(f"/console/jobs/{record.id}", status_code=303)
    by_field, rest = field_errors(provider, errors)
    return _page(request, "submit.html", key, forms=form_inputs(), errors=rest, field_errors=by_field,
                 values=form, provider=provider)
