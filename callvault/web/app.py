"""``create_app(ctx)``: the FastAPI application. Built by the entry point; nothing here runs at import."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from callvault.context import Context
from callvault.settings import PlaybackMode
from callvault.web import api, health, media, pages, permalink, webhooks
from callvault.web.errors import install_error_handlers
from callvault.web.limits import BodySizeLimit
from callvault.web.security import SecurityHeaders, content_security_policy

STATIC = Path(__file__).resolve().parent / "static"


def create_app(ctx: Context) -> FastAPI:
    app = FastAPI(title="callvault", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=ctx.settings.webhook_max_body_bytes)
    app.include_router(webhooks.router)
    app.include_router(health.router)
    csp = content_security_policy(ctx.store, presigns=ctx.settings.playback_mode is PlaybackMode.REDIRECT)
    app.add_middleware(SecurityHeaders, csp=csp)
    app.include_router(api.router)
    app.include_router(permalink.router)
    app.include_router(media.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
