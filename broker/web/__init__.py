"""The web dashboard: one static page at `/` and its assets under `/static/`.

The page is plain HTML, CSS and JavaScript modules shipped as package data, with no build step
and nothing fetched from elsewhere: it reads the broker's own public API, and the account's API
once the user enters a key (held in the tab's sessionStorage). The Content-Security-Policy makes
the browser enforce that: scripts and styles only from the broker, requests only to the broker,
no inline script, so data shown on the page can never run as code and the key cannot leave.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard page at `/` and its assets under `/static/`."""
    page = (STATIC_DIR / "index.html").read_bytes()
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)
