"""Security headers on every response: a strict Content-Security-Policy (no inline script or style),
``X-Content-Type-Options``, ``Referrer-Policy``, framing denied, and ``Cache-Control: no-store`` unless a
route chose otherwise (pages and API answers list recordings; static files may be cached)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callvault.storage.base import Store

BASE_CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


def content_security_policy(store: Store, *, presigns: bool) -> str:
    """The CSP for this deployment.

    When playback redirects to presigned S3 URLs, the audio element follows ``/r/{sid}`` to the bucket's
    origin, and CSP checks redirect targets too: that one origin is added to ``media-src`` (found by
    presigning a probe key locally; presigning makes no request).
    """
    if not presigns:
        return BASE_CSP
    probe = store.presign("csp-probe", ttl_seconds=1, content_type="audio/wav", filename="probe.wav")
    if probe is None:
        return BASE_CSP
    parts = urlsplit(probe)
    return f"{BASE_CSP}; media-src 'self' {parts.scheme}://{parts.netloc}"


class SecurityHeaders:
    """Pure ASGI middleware (it never buffers a streamed body)."""

    def __init__(self, app: ASGIApp, *, csp: str) -> None:
        self.app = app
        self.csp = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", self.csp)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
