"""``GET /r/{sid}``: the stable link to a recording.

Each request checks the caller. A media element (``Sec-Fetch-Dest: audio|video``, or any Range request)
gets the bytes right here: Chromium sends the Range requests of a seek or resume to the URL a 302 pointed
it at, not back to the permalink, so redirecting a player to a seconds-lived URL would break seeking and
pausing after the TTL (found by tests/web/test_browser.py). Everyone else (a CRM fetching a link, a
browser tab, curl) gets 302 to a freshly issued, seconds-lived URL (S3.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from callvault.playback import service
from callvault.web.deps import ContextDep, client_ip
from callvault.web.media import serve_grant
from callvault.web.sessions import CallerDep

router = APIRouter()


MEDIA_DESTINATIONS = frozenset({"audio", "video"})


def is_media_element(request: Request) -> bool:
    dest = request.headers.get("sec-fetch-dest", "")
    return dest in MEDIA_DESTINATIONS or "range" in request.headers


@router.api_route("/r/{sid}", methods=["GET", "HEAD"])
def permalink(*, sid: str, request: Request, ctx: ContextDep, caller: CallerDep) -> Response:
    """302 to a new playback URL (or, for a media element, the bytes) for an authorized caller; 404 when
    the caller may not hear the recording."""
    if is_media_element(request):
        grant = service.stream_grant(
            ctx,
            caller.principal,
            sid,
            client_ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
        return serve_grant(ctx.store, grant, request)
    link = service.issue_link(
        ctx,
        caller.principal,
        sid,
        client_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        via="permalink",
        base_url=str(request.base_url),
    )
    return RedirectResponse(
        link.url,
        status_code=302,
        # The target URL is a bearer credential for its lifetime: keep it out of caches and Referer headers.
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
