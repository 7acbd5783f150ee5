"""RFC 9457 problem details: every error the API answers is `application/problem+json`.

A 422 lists each bad field with its rule (`errors: [{"field", "rule"}]`), worded by the
same formatter as the CLI's errors (producer/core/models/validation_errors.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pydantic
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from producer.core.models.providers import PROVIDERS
from producer.core.models.validation_errors import field_errors

MEDIA_TYPE = "application/problem+json"
_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           408: "Request timeout", 409: "Conflict", 413: "Content too large", 415: "Unsupported media type",
           416: "Range not satisfiable", 500: "Internal server error", 502: "Bad gateway",
           422: "Unprocessable content", 429: "Too many requests", 503: "Service unavailable"}


class FieldError(BaseModel):
    field: str
    rule: str


class ProblemBody(BaseModel):
    """The body of every error (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that may answer these problem statuses (for OpenAPI)."""
    return {code: {"model": ProblemBody, "description": _TITLES.get(code, "Error"),
                   "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemBody"}}}}
            for code in codes}


class Problem(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None,
                 errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.errors = errors


def problem_response(status: int, detail: str | None, headers: dict[str, str] | None = None,
                     errors: list[tuple[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = [{"field": f, "rule": r} for f, r in errors]
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def pydantic_errors(errors: Sequence[Any]) -> list[tuple[str, str]]:
    """(field, rule) pairs of a submit body's errors, named as the CLI names them."""
    pairs = []
    for error in errors:
        # ("body", "udio", "request", "prompt"): drop the "body" and the union's tag.
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        if len(loc) > 1 and loc[0] in PROVIDERS:
            loc = loc[1:]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") in ("union_tag_invalid", "union_tag_not_found"):
            loc, message = ["provider"], f"must be one of {', '.join(sorted(PROVIDERS))}"
        elif error.get("type") == "value_error" and ": " in message:
            named, message = message.split(": ", 1)
            loc = ["request", named] if loc[:1] == ["request"] else [named]
        elif error.get("type") == "json_invalid":
            # loc is ("body", offset): name the body, not the offset as if it were a field.
            reason = (error.get("ctx") or {}).get("error", "JSON decode error")
            where = loc[0] if loc else "?"
            loc, message = ["body"], f"must be JSON ({reason} at character {where})"
        elif error.get("type") == "extra_forbidden":
            message = "unknown field (not part of the request)"
        pairs.append((".".join(loc) or "body", message))
    return pairs


def install(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc.status, exc.detail, exc.headers, exc.errors)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return problem_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def on_request(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(422, "the request breaks a rule", errors=pydantic_errors(exc.errors()))

    async def on_pydantic(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, pydantic.ValidationError)
        return problem_response(422, "the request breaks a rule", errors=field_errors(exc))

    async def on_error(_: Request, exc: Exception) -> JSONResponse:
        # Anything else is our fault: problem+json like every other error, and no detail
        # (a message may carry a path or an upstream's bytes); uvicorn logs the traceback.
        return problem_response(500, "an internal error; the server's log has the details")

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(Exception, on_error)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_request)
    app.add_exception_handler(pydantic.ValidationError, on_pydantic)
