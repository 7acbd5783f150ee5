"""`songqueue api`: serve the HTTP API and console (producer/api/)."""

from __future__ import annotations

import argparse

from producer.core.settings import get_settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("api", help="serve the HTTP API (jobs, events, songs) under API keys, and the console at /console")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8800, help="port (default 8800; 0 picks a free port)")
    p.add_argument("--max-body", type=int, default=1 << 20, metavar="BYTES", help="request body cap (default 1 MiB)")
    p.add_argument("--read-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="a request's head, and then its body, must each arrive within this (default 30)")
    p.add_argument("--max-upload", type=int, default=20 << 20, metavar="BYTES",
                   help="POST /v1/uploads: the largest reference file (default 20 MiB)")


def command(args: argparse.Namespace) -> int:
    # FastAPI and uvicorn (the `ops` extra) only where the API runs.
    from producer.api.app import create_app
    from producer.api.server import serve

    settings = get_settings()
    app = create_app(settings, max_body_bytes=args.max_body, max_upload_bytes=args.max_upload,
                     body_read_timeout=args.read_timeout)
    return serve(app, args.host, args.port, read_timeout=args.read_timeout, workers=settings.api_workers,
                 also=(("console", "/console"), ("API reference", "/docs")))
