"""Twilio-shaped response documents, and the one body sender that applies body faults and logs the outcome."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from email.utils import format_datetime
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from callvault.twilio.simulator.state import Fault, SimRecording, SimState

API_PREFIX = "/2010-04-01"
_MORE_INFO = "https://www.twilio.com/docs/errors/{code}"
_MUTATE_FLOOR = 64  # keep the WAV/MP3/ID3 header intact: a mutated body must still look like audio


class SimulatedDisconnectError(Exception):
    """Raised after part of a body went out: uvicorn then closes the connection, which is the point."""


class _DropSimulatedDisconnectError(logging.Filter):
    """uvicorn logs every exception that ends an ASGI call; the simulator's deliberate ones are not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SimulatedDisconnectError))


def quiet_simulated_disconnects() -> None:
    """Install (once) the filter that keeps deliberate disconnects out of uvicorn's error log."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(existing, _DropSimulatedDisconnectError) for existing in logger.filters):
        logger.addFilter(_DropSimulatedDisconnectError())


# -- documents -------------------------------------------------------------------------------------------


def rfc2822(value: Any) -> str:
    return format_datetime(value)


def recording_uri(account_sid: str, sid: str) -> str:
    return f"{API_PREFIX}/Accounts/{account_sid}/Recordings/{sid}"


def recording_json(recording: SimRecording, *, base_url: str) -> dict[str, Any]:
    """The fields of Twilio's Recording resource (TWILIO.md), with Twilio's types: ``duration`` a string."""
    uri = recording_uri(recording.account_sid, recording.sid)
    completed = recording.status == "completed"
    return {
        "account_sid": recording.account_sid,
        "api_version": "2010-04-01",
        "call_sid": recording.call_sid,
        "conference_sid": recording.conference_sid,
        "date_created": rfc2822(recording.date_created),
        "date_updated": rfc2822(recording.date_created),
        "start_time": rfc2822(recording.date_created),
        "duration": str(recording.duration) if completed else "-1",
        "sid": recording.sid,
        "price": "-0.00250" if completed else None,
        "price_unit": "USD",
        "status": "deleted" if recording.deleted else recording.status,
        "channels": recording.channels,
        "source": recording.source,
        "error_code": recording.error_code,
        "track": "both",
        "encryption_details": None,
        "media_url": base_url + uri,
        "uri": uri + ".json",
        "subresource_uris": {
            "add_on_results": uri + "/AddOnResults.json",
            "transcriptions": uri + "/Transcriptions.json",
        },
    }


def error_json(code: int, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message, "more_info": _MORE_INFO.format(code=code), "status": status}


def not_found_json(path: str) -> dict[str, Any]:
    return error_json(20404, f"The requested resource {path} was not found", 404)


def error_xml(code: int, message: str, status: int) -> bytes:
    """Twilio's XML error document: what a naive downloader once stored to S3 as "the recording"."""
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f"<TwilioResponse><RestException><Code>{code}</Code><Message>{message}</Message>"
        f"<MoreInfo>{_MORE_INFO.format(code=code)}</MoreInfo><Status>{status}</Status>"
        "</RestException></TwilioResponse>"
    ).encode()


# -- the body sender ---------------------------------------------------------------------------------------


class SimBody(Response):
    """An ASGI response that streams ``chunks`` of declared ``length`` and logs how it ended.

    Body faults: ``truncate`` sends exactly half of the declared length, ``reset`` a third, and both
    then drop the connection; ``slow`` pauses between chunks; ``mutate`` flips a few bytes past the
    header. A client that disconnects ends the stream early (logged as not completed).
    """

    def __init__(
        self,
        *,
        state: SimState,
        seq: int,
        status: int,
        headers: dict[str, str],
        chunks: Iterable[bytes],
        length: int,
        fault: Fault | None = None,
    ) -> None:
        # Response.__init__ would render a whole body in memory; this class streams its own.
        self.state = state
        self.seq = seq
        self.status = status
        # No Content-Length on 204/304: HTTP forbids it there.
        self.header_map = headers if status in (204, 304) else {**headers, "content-length": str(length)}
        self.chunks = chunks
        self.length = length
        self.fault = fault.name if fault is not None else None
        self.delay = fault.delay_seconds if fault is not None else 0.0
        self._sent = 0
        self._completed = False
        self._logged = False

    @classmethod
    def document(
        cls,
        *,
        state: SimState,
        seq: int,
        status: int,
        body: Any,
        fault: Fault | None = None,
        headers: dict[str, str] | None = None,
    ) -> SimBody:
        """A JSON document (``dict``), raw XML (``bytes``, sent as text/xml), or nothing (``None``)."""
        if body is None:
            data, content_type = b"", None
        elif isinstance(body, bytes):
            data, content_type = body, "text/xml"
        else:
            data, content_type = json.dumps(body).encode(), "application/json; charset=utf-8"
        all_headers = dict(headers or {})
        if content_type:
            all_headers["content-type"] = content_type
        return cls(
            state=state,
            seq=seq,
            status=status,
            headers=all_headers,
            chunks=[data] if data else [],
            length=len(data),
            fault=fault,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(name.encode(), value.encode()) for name, value in self.header_map.items()]
        if self.length == 0 or scope.get("method") == "HEAD":
            # Headers only (a HEAD needs no generated body). Logged first: the client has the whole answer
            # as soon as the headers arrive.
            self._completed = True
            self._finish()
            await send({"type": "http.response.start", "status": self.status, "headers": headers})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        aborted = False
        try:
            async with anyio.create_task_group() as group:

                async def watch_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(watch_disconnect)
                aborted = await self._stream(send)
                group.cancel_scope.cancel()
        finally:
            self._finish()
        if aborted:
            raise SimulatedDisconnectError(self.fault)

    async def _stream(self, send: Send) -> bool:
        """Send the body; True when the fault says to drop the connection now."""
        limit = {"truncate": self.length // 2, "reset": self.length // 3}.get(self.fault or "", self.length)
        for chunk in self._mutated(iter(self.chunks)):
            piece = chunk[: limit - self._sent] if self._sent + len(chunk) > limit else chunk
            if self._sent + len(piece) == self.length:
                # Logged before the last bytes go out: a client holding the whole body then always finds
                # the event complete ("completed" means the whole body was handed to the socket).
                self._completed = True
                self._finish(sent=self.length)
            if piece:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                self._sent += len(piece)
            if self._sent >= limit and limit < self.length:
                return True
            # Always give the event loop a turn: send() only blocks when the socket buffer is full, so
            # without this a large body would starve other requests and never notice a client that left.
            await anyio.sleep(self.delay if self.fault == "slow" else 0)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return False

    def _finish(self, *, sent: int | None = None) -> None:
        if not self._logged:
            self._logged = True
            sent = self._sent if sent is None else sent
            self.state.finish_event(self.seq, bytes_sent=sent, completed=self._completed)

    def _mutated(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        if self.fault != "mutate":
            yield from chunks
            return
        floor = min(_MUTATE_FLOOR, max(0, self.length - 1))
        targets = sorted({max(floor, self.length * k // 4) for k in (1, 2, 3)})
        offset = 0
        for chunk in chunks:
            end = offset + len(chunk)
            hits = [t - offset for t in targets if offset <= t < end]
            if not hits:
                yield chunk
            else:
                changed = bytearray(chunk)
                for index in hits:
                    changed[index] ^= 0x5A
                yield bytes(changed)
            offset = end
