"""The console's pages: log in with a key, the jobs table, a job's page, the submit form.

The key goes into an HttpOnly, SameSite=Strict cookie (producer/api/auth.py), so the
pages, and the `<audio>`, `<img>` and EventSource they hold, reach the API as that key.
What a page shows is what the key may see through the API: the same tenant rule.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import TypeAdapter

from producer.api.auth import CONSOLE_COOKIE
from producer.api.console.forms import form_inputs, submit_body
from producer.api.jobs import submit_job
from producer.api.problems import Problem, pydantic_errors
from producer.api.schemas import SubmitJob
from producer.api.state import api_state
from producer.client.replay import NotReplayable
from producer.core import callbacks
from producer.core.models.job_record import JobRecord, JobState
from producer.core.models.providers import PROVIDERS
from producer.core.store import endpoints
from producer.core.store.api_keys import ApiKey

HERE = Path(__file__).parent
router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")
static = StaticFiles(directory=HERE / "static")
_SUBMIT = TypeAdapter(SubmitJob)
_TABLE_ROWS = 200


def _key(request: Request) -> ApiKey | None:
    secret = request.cookies.get(CONSOLE_COOKIE)
    key = api_state(request).keys.authenticate(secret) if secret else None
    return key if key is not None and key.allows("read") else None


def _to_login() -> RedirectResponse:
    return RedirectResponse("/console/login", status_code=303)


def _visible(key: ApiKey, record: JobRecord | None) -> bool:
    return record is not None and ("admin" in key.scopes or record.tenant == key.tenant)


def _page(request: Request, name: str, key: ApiKey | None, **context: Any) -> HTMLResponse:
    # The banner counts disabled callback origins only, naming none: they may be other tenants' receivers.
    queue = api_state(request).queue
    disabled = endpoints.disabled_count(queue.store.redis, queue.settings.key_prefix) if key else 0
    return templates.TemplateResponse(request, name, {"key": key, "states": [s.value for s in JobState],
                                                      "disabled_endpoints": disabled, **context})


@router.get("")
def home() -> RedirectResponse:
    return RedirectResponse("/console/jobs", status_code=303)


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return _page(request, "login.html", None, error=None)


@router.post("/login")
def login(request: Request, api_key: Annotated[str, Form()]) -> Response:
    key = api_state(request).keys.authenticate(api_key.strip())
    if key is None or not key.allows("read"):
        return _page(request, "login.html", None, error="unknown or revoked key, or a key without the read scope")
    response = RedirectResponse("/console/jobs", status_code=303)
    response.set_cookie(CONSOLE_COOKIE, api_key.strip(), httponly=True, samesite="strict", path="/")
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    response = _to_login()
    response.delete_cookie(CONSOLE_COOKIE, path="/")
    return response


def _text(record: JobRecord) -> str:
    spec = PROVIDERS.get(record.provider)
    return str(record.request.get(spec.text_field, "")) if spec else ""


@router.get("/jobs")
def jobs_page(request: Request, state: str = "", q: str = "") -> Response:
    key = _key(request)
    if key is None:
        return _to_login()
    needle = q.strip().lower()
    rows = []
    wanted = JobState(state) if state in {s.value for s in JobState} else None
    for record in api_state(request).queue.store.list(wanted, _TABLE_ROWS):
        if not _visible(key, record):
            continue
        text = _text(record)
        if needle and not (record.id.startswith(needle) or needle in text.lower()):
            continue
        rows.append({"id": record.id, "state": record.state.value, "progress": record.progress, "provider": record.provider,
                     "text": text, "age": _age(time.time() - record.created_at), "tenant": record.tenant})
    return _page(request, "jobs.html", key, rows=rows, state=state, q=q)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def _timeline(record: JobRecord) -> list[dict[str, Any]]:
    """Each state the job passed through, with its share of the job's time so far."""
    marks = record.transitions
    end = record.updated_at if record.state.terminal else time.time()
    spans = [(t.state.value, t.at, (marks[i + 1].at if i + 1 < len(marks) else end)) for i, t in enumerate(marks)]
    total = max(end - marks[0].at, 1e-6) if marks else 1.0
    return [{"state": s, "seconds": round(b - a, 2), "share": max(0.5, 100 * (b - a) / total)} for s, a, b in spans]


@router.get("/jobs/{job_id}")
def job_page(job_id: str, request: Request) -> Response:
    key = _key(request)
    if key is None:
        return _to_login()
    record = api_state(request).queue.store.get(job_id)
    if record is None or not _visible(key, record):
        raise Problem(404, f"no job {job_id}")
    last = {a.delivery: i for i, a in enumerate(record.callbacks)}  # a replay button on each event's latest attempt
    return _page(request, "job.html", key, job=record, text=_text(record), timeline=_timeline(record),
                 admin="admin" in key.scopes, replay_rows=set(last.values()))


@router.post("/jobs/{job_id}/callbacks/{delivery}/replay")
def replay_callback(job_id: str, delivery: str, request: Request) -> Response:
    key = _key(request)
    if key is None or "admin" not in key.scopes:
        raise Problem(403, "retry, cancel and replay in the console are for admin keys")
    record = api_state(request).queue.store.get(job_id)
    if record is None:
        raise Problem(404, f"no job {job_id}")
    try:
        callbacks.replay(api_state(request).queue.celery, record, delivery)
    except callbacks.UnknownDelivery as exc:
        raise Problem(404, str(exc)) from None
    return RedirectResponse(f"/console/jobs/{job_id}", status_code=303)


@router.post("/jobs/{job_id}/{action}")
def job_action(job_id: str, action: str, request: Request) -> Response:
    key = _key(request)
    if key is None or "admin" not in key.scopes:
        raise Problem(403, "retry and cancel in the console are for admin keys")
    queue = api_state(request).queue
    try:
        if action == "cancel":
            queue.cancel(job_id)
        elif action == "retry":
            queue.retry(job_id)
        else:
            raise Problem(404, f"no action {action}")
    except NotReplayable as exc:
        raise Problem(409, str(exc)) from None
    return RedirectResponse(f"/console/jobs/{job_id}", status_code=303)


@router.get("/submit")
def submit_form(request: Request) -> Response:
    key = _key(request)
    if key is None:
        return _to_login()
    return _page(request, "submit.html", key, forms=form_inputs(), errors=[], values={}, provider="udio")


@router.post("/submit")
async def submit(request: Request) -> Response:
    key = _key(request)
    if key is None:
        return _to_login()
    form = {k: str(v) for k, v in (await request.form()).items()}
    provider = form.get("provider", "")
    try:
        body = _SUBMIT.validate_python(submit_body(provider, form))
        record, _ = submit_job(api_state(request), key, body) if key.allows("submit") else (None, False)
    except pydantic.ValidationError as exc:
        return _page(request, "submit.html", key, forms=form_inputs(), errors=pydantic_errors(exc.errors()),
                     values=form, provider=provider)
    except Problem as exc:
        return _page(request, "submit.html", key, forms=form_inputs(), errors=exc.errors or [("", exc.detail)],
                     values=form, provider=provider)
    if record is None:
        raise Problem(403, "this key lacks the 'submit' scope")
    return RedirectResponse(f"/console/jobs/{record.id}", status_code=303)
