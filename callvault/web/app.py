"""``create_app(ctx)``: the FastAPI application. Built by the entry point; nothing here runs at import."""

from __future__ import annotations

from fastapi import FastAPI

from callvault.context import Context
from callvault.web import webhooks
from callvault.web.errors import install_error_handlers
from callvault.web.limits import BodySizeLimit


def create_app(ctx: Context) -> FastAPI:
    app = FastAPI(title="callvault", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=ctx.settings.webhook_max_body_bytes)
    app.include_router(webhooks.router)
    return app
