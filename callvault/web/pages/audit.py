"""``/audit``: the newest audit entries (auditors and admins), filtered by action or recording, with the
chain's integrity as ``audit.trail.verify`` reports it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from callvault import sids
from callvault.audit import trail
from callvault.errors import Forbidden
from callvault.web.deps import ContextDep
from callvault.web.pages.templating import render
from callvault.web.sessions import CallerDep

router = APIRouter()

PAGE_SIZE = 50


@router.get("/audit", response_class=HTMLResponse)
def audit(
    *,
    request: Request,
    ctx: ContextDep,
    caller: CallerDep,
    action: str | None = None,
    recording: str | None = None,
    before: int | None = None,
) -> HTMLResponse:
    if not caller.principal.can_audit:
        raise Forbidden("only auditors and admins may read the audit trail")
    action = (action or "").strip() or None
    recording_sid = sids.recording_sid(recording.strip(), field="recording") if recording else None
    with ctx.db.read() as session:
        entries = trail.list_entries(
            session, limit=PAGE_SIZE, before_id=before, action=action, recording_sid=recording_sid
        )
        chain = trail.verify(session)
    return render(
        request,
        "audit.html",
        ctx=ctx,
        caller=caller,
        entries=entries,
        chain=chain,
        action=action or "",
        recording=recording_sid or "",
        older=entries[-1].id if len(entries) == PAGE_SIZE else None,
    )
