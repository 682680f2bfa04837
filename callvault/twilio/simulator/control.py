"""``/_sim/``: drive a simulator running in another process over HTTP (JSON in, JSON out).

Everything but ``/_sim/health`` needs the same Basic auth as the Twilio endpoints.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from callvault.twilio.simulator.state import Fault, SimRecording, SimState

Accepts = Callable[[str | None], bool]
Handler = Callable[[Request], Awaitable[Response]]


def recording_view(recording: SimRecording) -> dict[str, Any]:
    """Everything the simulator knows about a recording, for the test driving it."""
    return {
        "sid": recording.sid,
        "account_sid": recording.account_sid,
        "call_sid": recording.call_sid,
        "conference_sid": recording.conference_sid,
        "date_created": recording.date_created.isoformat(),
        "size_bytes": recording.size_bytes,
        "mp3_size_bytes": recording.media_size("mp3"),
        "duration": recording.duration,
        "channels": recording.channels,
        "seed": recording.seed,
        "source": recording.source,
        "status": recording.status,
        "error_code": recording.error_code,
        "deleted": recording.deleted,
    }


def routes(state: SimState, accepts: Accepts) -> list[Route]:
    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not accepts(request.headers.get("authorization")):
                return JSONResponse({"error": "Basic auth with the simulator's credentials required"}, 401)
            try:
                return await handler(request)
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"error": str(exc)}, 400)

        return endpoint

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def list_recordings(request: Request) -> Response:
        return JSONResponse([recording_view(rec) for rec in state.recordings()])

    async def add_recording(request: Request) -> Response:
        body = await _json(request)
        if "date_created" in body and body["date_created"] is not None:
            body["date_created"] = datetime.fromisoformat(body["date_created"])
        return JSONResponse(recording_view(state.add_recording(**body)), 201)

    async def get_recording(request: Request) -> Response:
        recording = state.recording(str(request.path_params["sid"]))
        if recording is None:
            return JSONResponse({"error": "unknown recording"}, 404)
        return JSONResponse(recording_view(recording))

    async def set_status(request: Request) -> Response:
        body = await _json(request)
        state.set_status(str(request.path_params["sid"]), body["status"], error_code=body.get("error_code"))
        return JSONResponse({"ok": True})

    async def add_fault(request: Request) -> Response:
        body = await _json(request)
        options = {key: body[key] for key in ("status", "retry_after", "delay_seconds") if key in body}
        fault = Fault(body["fault"], **options)
        state.add_fault(body["kind"], fault, sid=body.get("sid"), times=int(body.get("times", 1)))
        return JSONResponse({"ok": True}, 201)

    async def fail_rate(request: Request) -> Response:
        body = await _json(request)
        state.set_fail_rate(float(body["rate"]), seed=int(body.get("seed", 0)))
        return JSONResponse({"ok": True})

    async def events(request: Request) -> Response:
        query = request.query_params
        found = state.events(kind=query.get("kind"), sid=query.get("sid"))
        return JSONResponse([dataclasses.asdict(event) for event in found])

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    return [
        Route("/_sim/health", health, methods=["GET"]),
        Route("/_sim/recordings", guarded(list_recordings), methods=["GET"]),
        Route("/_sim/recordings", guarded(add_recording), methods=["POST"]),
        Route("/_sim/recordings/{sid}", guarded(get_recording), methods=["GET"]),
        Route("/_sim/recordings/{sid}/status", guarded(set_status), methods=["POST"]),
        Route("/_sim/faults", guarded(add_fault), methods=["POST"]),
        Route("/_sim/fail_rate", guarded(fail_rate), methods=["POST"]),
        Route("/_sim/events", guarded(events), methods=["GET"]),
        Route("/_sim/reset", guarded(reset), methods=["POST"]),
    ]


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg}") from None
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body
