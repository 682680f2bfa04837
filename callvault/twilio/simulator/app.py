"""The simulator's HTTP app: Twilio's Recordings subset, the fake CDN, and the /_sim/ control API.

Every Twilio endpoint needs Basic auth (AccountSid:AuthToken or ApiKeySid:ApiKeySecret) and the simulated
account in the path; then a queued fault for (recording, endpoint kind) is consumed, if any; then the request
is answered as Twilio would. Every request is logged as one event.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from callvault import sids
from callvault.twilio.simulator import control, listing
from callvault.twilio.simulator.responses import (
    API_PREFIX,
    SimBody,
    error_json,
    error_xml,
    not_found_json,
    quiet_simulated_disconnects,
    recording_json,
)
from callvault.twilio.simulator.state import EventKind, Fault, MediaFormat, SimState

_MEDIA_TYPES: dict[str, str] = {"wav": "audio/x-wav", "mp3": "audio/mpeg"}
_BODY_FAULTS = frozenset({"truncate", "reset", "slow", "mutate"})
_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "delete": ("json", ""),
    "metadata": ("json",),
    "media": ("", "wav", "mp3"),
}


@dataclass(frozen=True)
class Credentials:
    """The simulated account and the API key that may act for it."""

    account_sid: str
    auth_token: str = field(repr=False)
    api_key_sid: str
    api_key_secret: str = field(repr=False)

    def accepts(self, authorization: str | None) -> bool:
        """True when the header is Basic auth with the account's token or the API key's secret."""
        pair = _basic_pair(authorization)
        if pair is None:
            return False
        username, password = pair
        pairs = ((self.account_sid, self.auth_token), (self.api_key_sid, self.api_key_secret))
        return any(
            hmac.compare_digest(username.encode(), user.encode())
            & hmac.compare_digest(password.encode(), secret.encode())
            for user, secret in pairs
        )


def create_app(state: SimState, credentials: Credentials) -> Starlette:
    quiet_simulated_disconnects()
    api = _TwilioApi(state, credentials)
    routes = [
        Route(f"{API_PREFIX}/Accounts/{{account}}/Recordings.json", api.list_recordings, methods=["GET"]),
        Route(
            f"{API_PREFIX}/Accounts/{{account}}/Recordings/{{name}}", api.recording, methods=["GET", "DELETE"]
        ),
        Route("/_cdn/{token}", api.cdn, methods=["GET"]),
        *control.routes(state, credentials.accepts),
    ]
    return Starlette(routes=routes)


class _TwilioApi:
    def __init__(self, state: SimState, credentials: Credentials) -> None:
        self.state = state
        self.credentials = credentials

    # -- endpoints -------------------------------------------------------------------------------------
    async def recording(self, request: Request) -> Response:
        arrived = time.monotonic()
        sid, _, extension = str(request.path_params["name"]).partition(".")
        kind: EventKind
        if request.method == "DELETE":
            kind = "delete"
        elif extension == "json":
            kind = "metadata"
        else:
            kind = "media"
        log_sid = sid if sids.is_sid(sid, "RE") else None
        denied = self._deny(request, kind=kind, sid=log_sid, arrived=arrived)
        if denied is not None:
            return denied
        if log_sid is None or extension not in _EXTENSIONS[kind]:
            return self._answer(request, kind=kind, sid=log_sid, arrived=arrived, status=404)
        fault = self.state.take_fault(kind, sid)
        early = self._fault_answer(request, kind=kind, sid=sid, arrived=arrived, fault=fault)
        if early is not None:
            return early
        if kind == "metadata":
            return self._metadata(request, sid=sid, arrived=arrived, fault=fault)
        if kind == "delete":
            return self._delete(request, sid=sid, arrived=arrived, fault=fault)
        media_format: MediaFormat = "mp3" if extension == "mp3" else "wav"
        return self._media(request, sid=sid, media_format=media_format, arrived=arrived, fault=fault)

    async def list_recordings(self, request: Request) -> Response:
        arrived = time.monotonic()
        denied = self._deny(request, kind="list", sid=None, arrived=arrived)
        if denied is not None:
            return denied
        fault = self.state.take_fault("list", None)
        early = self._fault_answer(request, kind="list", sid=None, arrived=arrived, fault=fault)
        if early is not None:
            return early
        try:
            page = listing.page(self.state, request, base_url=_base_url(request))
        except listing.BadQueryError as exc:
            return self._answer(
                request,
                kind="list",
                sid=None,
                arrived=arrived,
                status=400,
                body=error_json(20001, str(exc), 400),
            )
        return self._answer(
            request, kind="list", sid=None, arrived=arrived, status=200, body=page, fault=fault
        )

    async def cdn(self, request: Request) -> Response:
        arrived = time.monotonic()
        target = self.state.redeem_cdn_token(str(request.path_params["token"]))
        sid = target[0] if target else None
        if "authorization" in request.headers:
            # A CDN must never see the account's credentials: refuse loudly so a test can see the leak.
            seq = self._log(
                request, kind="cdn", sid=sid, status=400, arrived=arrived, detail="authorization header"
            )
            body = {"error": "this host does not accept an Authorization header"}
            return SimBody.document(state=self.state, seq=seq, status=400, body=body)
        recording = self.state.recording(sid) if sid else None
        if target is None or recording is None or recording.deleted:
            seq = self._log(request, kind="cdn", sid=sid, status=404, arrived=arrived)
            return SimBody.document(state=self.state, seq=seq, status=404, body={"error": "unknown token"})
        media_format = target[1]
        seq = self._log(request, kind="cdn", sid=sid, status=200, arrived=arrived)
        return SimBody(
            state=self.state,
            seq=seq,
            status=200,
            headers={"content-type": _MEDIA_TYPES[media_format]},
            chunks=recording.iter_media(media_format),
            length=recording.media_size(media_format),
        )

    # -- normal answers --------------------------------------------------------------------------------
    def _metadata(self, request: Request, *, sid: str, arrived: float, fault: Fault | None) -> Response:
        recording = self.state.recording(sid)
        soft = request.query_params.get("IncludeSoftDeleted", "").lower() == "true"
        if recording is None or (recording.deleted and not soft):
            return self._answer(request, kind="metadata", sid=sid, arrived=arrived, status=404)
        body = recording_json(recording, base_url=_base_url(request))
        return self._answer(
            request, kind="metadata", sid=sid, arrived=arrived, status=200, body=body, fault=fault
        )

    def _delete(self, request: Request, *, sid: str, arrived: float, fault: Fault | None) -> Response:
        if not self.state.delete(sid):
            return self._answer(request, kind="delete", sid=sid, arrived=arrived, status=404)
        if fault is not None and fault.name == "reset":
            # Deleted, but the answer is lost on the way: a 200 whose body never arrives.
            body = error_json(20500, "connection reset by the simulator after the deletion", 500)
            return self._answer(
                request, kind="delete", sid=sid, arrived=arrived, status=200, body=body, fault=fault
            )
        return self._answer(request, kind="delete", sid=sid, arrived=arrived, status=204, body=None)

    def _media(
        self, request: Request, *, sid: str, media_format: MediaFormat, arrived: float, fault: Fault | None
    ) -> Response:
        recording = self.state.recording(sid)
        if recording is None or recording.deleted or recording.status != "completed":
            return self._answer(request, kind="media", sid=sid, arrived=arrived, status=404)
        if fault is not None and fault.name == "redirect":
            token = self.state.issue_cdn_token(sid, media_format)
            location = f"{_cdn_origin(request)}/_cdn/{token}"
            seq = self._log(request, kind="media", sid=sid, status=302, arrived=arrived, fault=fault.name)
            return SimBody.document(
                state=self.state, seq=seq, status=302, body=None, headers={"location": location}
            )
        seq = self._log(request, kind="media", sid=sid, status=200, arrived=arrived, fault=_name(fault))
        return SimBody(
            state=self.state,
            seq=seq,
            status=200,
            headers={"content-type": _MEDIA_TYPES[media_format]},
            chunks=recording.iter_media(media_format),
            length=recording.media_size(media_format),
            fault=fault if fault is not None and fault.name in _BODY_FAULTS else None,
        )

    # -- helpers ---------------------------------------------------------------------------------------
    def _deny(self, request: Request, *, kind: EventKind, sid: str | None, arrived: float) -> Response | None:
        account = request.path_params.get("account")
        if self.credentials.accepts(request.headers.get("authorization")) and hmac.compare_digest(
            str(account), self.credentials.account_sid
        ):
            return None
        body = {
            **error_json(20003, "Authenticate", 401),
            "detail": "Your AccountSid or AuthToken was incorrect.",
        }
        seq = self._log(request, kind=kind, sid=sid, status=401, arrived=arrived)
        headers = {"www-authenticate": 'Basic realm="Twilio API"'}
        return SimBody.document(state=self.state, seq=seq, status=401, body=body, headers=headers)

    def _fault_answer(
        self, request: Request, *, kind: EventKind, sid: str | None, arrived: float, fault: Fault | None
    ) -> Response | None:
        """The whole answer for a fault that replaces the real one; None for body faults and redirects."""
        if (
            fault is None
            or fault.name in _BODY_FAULTS
            or fault.name == "redirect"
            or (kind == "delete" and fault.name == "reset")
        ):
            return None
        headers: dict[str, str] = {}
        body: Any
        if fault.name == "not_ready":
            status, body = 404, not_found_json(request.url.path)
        elif fault.name == "rate_limit":
            status, body = 429, error_json(20429, "Too Many Requests", 429)
            headers["retry-after"] = str(fault.retry_after)
        elif fault.name == "server_error":
            message = "Internal Server Error" if fault.status == 500 else "Service Unavailable"
            status, body = fault.status, error_json(20000 + fault.status, message, fault.status)
        else:  # wrong_content_type: Twilio's XML error document, with a 200
            status, body = (
                200,
                error_xml(20404, f"The requested resource {request.url.path} was not found", 404),
            )
        seq = self._log(request, kind=kind, sid=sid, status=status, arrived=arrived, fault=fault.name)
        return SimBody.document(state=self.state, seq=seq, status=status, body=body, headers=headers)

    def _answer(
        self,
        request: Request,
        *,
        kind: EventKind,
        sid: str | None,
        arrived: float,
        status: int,
        body: Any = ...,
        fault: Fault | None = None,
    ) -> Response:
        if body is ...:
            body = not_found_json(request.url.path)
        body_fault = fault if fault is not None and fault.name in _BODY_FAULTS | {"reset"} else None
        seq = self._log(request, kind=kind, sid=sid, status=status, arrived=arrived, fault=_name(body_fault))
        return SimBody.document(state=self.state, seq=seq, status=status, body=body, fault=body_fault)

    def _log(
        self,
        request: Request,
        *,
        kind: EventKind,
        sid: str | None,
        status: int,
        arrived: float,
        fault: str | None = None,
        detail: str = "",
    ) -> int:
        return self.state.log_event(
            method=request.method,
            path=request.url.path,
            kind=kind,
            sid=sid,
            status=status,
            fault=fault,
            detail=detail,
            t=arrived,
            user=_basic_user(request.headers.get("authorization")),
            query=request.url.query,
        )


def _basic_pair(authorization: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return username, password


def _basic_user(authorization: str | None) -> str | None:
    pair = _basic_pair(authorization)
    return pair[0] if pair else None


def _name(fault: Fault | None) -> str | None:
    return fault.name if fault is not None else None


def _base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _cdn_origin(request: Request) -> str:
    """The same server under another host name, so a client sees a cross-host redirect: localhost when the
    API was called by IP address, 127.0.0.1 otherwise."""
    host = request.url.hostname or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
        other = "localhost"
    except ValueError:
        other = "127.0.0.1"
    port = f":{request.url.port}" if request.url.port else ""
    return f"{request.url.scheme}://{other}{port}"
