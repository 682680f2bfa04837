"""The server-rendered web UI (Jinja2, no front-end build step, no inline script or style)."""

from __future__ import annotations

from fastapi import APIRouter

from callvault.web.pages import admin, audit, login, recordings

router = APIRouter()
for _module in (login, recordings, admin, audit):
    router.include_router(_module.router)
