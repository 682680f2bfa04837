"""The one mapping from callvault's error tree to HTTP answers. No traceback ever reaches a client.

API clients get JSON. A browser asking for a page (``Accept: text/html``, outside ``/api/``, ``/twilio/``
and ``/media/``) gets an HTML error page instead, and a redirect to ``/login?next=…`` when not logged in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from callvault.errors import CallvaultError, TooManyRequests, Unauthenticated
from callvault.web.pages.templating import render
from callvault.web.sessions import identify

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CallvaultError)
    async def _callvault_error(request: Request, exc: CallvaultError) -> Response:
        if exc.http_status >= 500:
            log.warning("%s %s -> %s: %s", request.method, request.url.path, exc.http_status, exc.message)
        headers = {}
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
        if wants_html(request):
            if isinstance(exc, Unauthenticated):
                return login_redirect(request)
            return await run_in_threadpool(
                html_error, request, status=exc.http_status, message=exc.message, headers=headers
            )
        return JSONResponse({"error": exc.message}, status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
        message = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
        if wants_html(request):
            return await run_in_threadpool(html_error, request, status=400, message=message, headers=None)
        return JSONResponse({"error": message}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if wants_html(request):
            return await run_in_threadpool(
                html_error, request, status=exc.status_code, message=str(exc.detail), headers=exc.headers
            )
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal error"}, status_code=500)


_MACHINE_PREFIXES = ("/api/", "/twilio/", "/media/")


def wants_html(request: Request) -> bool:
    """A browser navigating to a page (not the API, webhooks, or media bytes)."""
    if request.url.path.startswith(_MACHINE_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    # 303 so a POST (an expired session submitting a form) comes back as a GET of the login page.
    status = 302 if request.method in ("GET", "HEAD") else 303
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=status)


def html_error(request: Request, *, status: int, message: str, headers: Mapping[str, str] | None) -> Response:
    ctx = request.app.state.ctx
    try:  # show the navigation to a logged-in person; a broken session just means no navigation
        caller = identify(ctx, request)
    except CallvaultError:
        caller = None
    return render(
        request,
        "error.html",
        ctx=ctx,
        caller=caller,
        status_code=status,
        headers=dict(headers or {}),
        status=status,
        message=message,
    )
