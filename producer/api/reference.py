"""The API's reference pages, /docs (Swagger UI) and /redoc (ReDoc), served with no CDN.

FastAPI's own pages load their scripts from a CDN, so they are blank without internet
(an air-gapped operator, a laptop on a train). Here the same pages take the scripts and
styles from the installed `fastapi-offline` package, served under /docs/static; `/` leads
to the console.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
STATIC = "/docs/static"
router = APIRouter(include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    """A person who opens the API's address wants the console."""
    return RedirectResponse("/console", status_code=307)


def install(app: FastAPI) -> None:
    """/docs and /redoc with local assets (the app is made with docs_url=None, redoc_url=None)."""
    title = f"{app.title} API"

    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=title,
                                   swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{STATIC}/swagger-ui.css",
                                   swagger_favicon_url=f"{STATIC}/favicon.png")

    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url or "/openapi.json", title=title,
                              redoc_js_url=f"{STATIC}/redoc.standalone.js",
                              redoc_favicon_url=f"{STATIC}/favicon.png", with_google_fonts=False)

    app.add_api_route("/docs", swagger, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
    app.mount(STATIC, StaticFiles(directory=ASSETS), name="docs-static")
