"""Liveness and readiness for load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from callvault.web.deps import ContextDep

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz(ctx: ContextDep) -> JSONResponse:
    """200 when the database answers; 503 otherwise (the load balancer stops routing here)."""

    def ping() -> None:
        with ctx.db.read() as session:
            session.execute(text("SELECT 1"))

    await run_in_threadpool(ping)
    return JSONResponse({"ok": True, "demo": ctx.settings.demo}, headers={"Cache-Control": "no-store"})
