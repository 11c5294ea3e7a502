"""The Starlette application: routes, security headers and error pages.

Security, for a server that shows prompts and outputs of someone's application:

* it listens on 127.0.0.1 unless told otherwise (`lc_observe.ui.serve`), and answers only
  requests whose ``Host`` is the address it serves (no DNS rebinding from a web page);
* every page carries a Content-Security-Policy: scripts and everything else from this
  server only, no inline script, no frames, no plugins; styles may be inline because
  lc_observe's views (shared with notebooks, which drop ``<style>``) style elements inline;
* every string from the database is escaped (`lc_observe.ui.html`), so a hostile prompt
  shows as text;
* the database is opened read-only; the one write (a score) is JSON-only and same-origin.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import LcObserveError, StoreError, TraceNotFoundError
from . import api, pages

STATIC = Path(__file__).with_name("static")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """Adds `HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in HEADERS if name not in names
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _problem(request: Request, status_code: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status_code)
    return pages.problem(request, status_code, message)


def _not_found(request: Request, exc: Exception) -> Response:
    return _problem(request, 404, str(exc))


def _bad_request(request: Request, exc: Exception) -> Response:
    return _problem(request, 400, str(exc))


def _forbidden(request: Request, exc: Exception) -> Response:
    return _problem(request, 403, str(exc))


def _store_error(request: Request, exc: Exception) -> Response:
    return _problem(request, 503, f"{exc}")


def _sqlite_error(request: Request, exc: Exception) -> Response:
    return _problem(request, 503, f"SQLite error on {request.app.state.db_path}: {exc}")


def _http_404(request: Request, exc: Exception) -> Response:
    return _problem(request, 404, f"no page at {request.url.path}: see /traces")


ROUTES = [
    Route("/", pages.home),
    Route("/traces", pages.traces),
    Route("/traces/{trace_id}", pages.trace),
    Route("/graph", pages.graph),
    Route("/stats", pages.stats),
    Route("/anomalies", pages.anomalies),
    Route("/compare", pages.compare),
    Route("/api/traces", api.traces),
    Route("/api/traces/{trace_id}", api.trace),
    Route("/api/traces/{trace_id}/scores", api.add_score, methods=["POST"]),
    Route("/api/search", api.search),
    Route("/api/graph", api.graph),
    Route("/api/stats", api.stats),
    Route("/api/anomalies", api.anomalies),
    Route("/api/diff", api.diff),
    Route("/api/compare", api.compare),
    Route("/api/changes", api.changes),
    Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def create_app(db_path: str, *, allowed_hosts: Sequence[str] | None = None) -> Starlette:
    """The UI over the lc_observe database at ``db_path`` (checked when a page opens it).

    ``allowed_hosts``: the ``Host`` names accepted (default: loopback names only).
    """
    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=hosts),
        ],
        exception_handlers={
            404: _http_404,
            TraceNotFoundError: _not_found,
            ValueError: _bad_request,
            TypeError: _bad_request,
            PermissionError: _forbidden,
            StoreError: _store_error,
            LcObserveError: _store_error,
            sqlite3.Error: _sqlite_error,
        },
    )
    app.state.db_path = str(db_path)
    return app
