"""``SimulatorServer``: the simulator on a real loopback port, served by uvicorn in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import threading
import time
from datetime import datetime
from types import TracebackType
from typing import Any

import uvicorn

from callvault.twilio.gateway import TwilioAccount
from callvault.twilio.simulator.app import Credentials, create_app
from callvault.twilio.simulator.state import Event, Fault, SimRecording, SimState

_START_TIMEOUT_SECONDS = 10.0


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, woken at once by :meth:`wake` instead of polling ``should_exit`` every 0.1 s
    (a test suite starts and stops hundreds of simulators)."""

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        while not await self.on_tick(0):  # tick 0 also refreshes the Date header
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    def wake(self) -> None:
        loop, event = self._loop, self._wake
        if loop is not None and event is not None:
            loop.call_soon_threadsafe(event.set)


class SimulatorServer:
    """A simulated Twilio account over real HTTP. Credentials are generated when not given.

    The Python methods below and the ``/_sim/`` HTTP API act on the same state, so a test can drive the
    simulator in-process and a benchmark can drive one in another process.
    """

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        api_key_sid: str | None = None,
        api_key_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.credentials = Credentials(
            account_sid=account_sid or "AC" + secrets.token_hex(16),
            auth_token=auth_token or secrets.token_hex(16),
            api_key_sid=api_key_sid or "SK" + secrets.token_hex(16),
            api_key_secret=api_key_secret or secrets.token_urlsafe(24),
        )
        self.state = SimState(account_sid=self.credentials.account_sid)
        self.host = host
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None

    # -- credentials and addresses -----------------------------------------------------------------------
    @property
    def account_sid(self) -> str:
        return self.credentials.account_sid

    @property
    def auth_token(self) -> str:
        return self.credentials.auth_token

    @property
    def api_key_sid(self) -> str:
        return self.credentials.api_key_sid

    @property
    def api_key_secret(self) -> str:
        return self.credentials.api_key_secret

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the simulator is not started")
        return int(self._socket.getsockname()[1])

    @property
    def base_url(self) -> str:
        """Where the Twilio API is served, e.g. ``http://127.0.0.1:54321`` (the ``api_base_url``)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104 - a comparison
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def recording_url(self, sid: str) -> str:
        """The ``RecordingUrl`` Twilio puts in callbacks (no extension)."""
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"

    def twilio_account(self, *, use_api_key: bool = True) -> TwilioAccount:
        """Gateway credentials for this simulator: the API key (the recommended setup) or the auth token."""
        return TwilioAccount(
            account_sid=self.account_sid,
            auth_token=self.auth_token,
            api_key_sid=self.api_key_sid if use_api_key else None,
            api_key_secret=self.api_key_secret if use_api_key else None,
            api_base_url=self.base_url,
        )

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> SimulatorServer:
        """Bind, serve in a daemon thread, and return once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only then, and without it
        # every response waits ~40 ms for a delayed ACK (headers and body are separate writes).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self._socket = sock
        config = uvicorn.Config(
            create_app(self.state, self.credentials),
            http="h11",
            ws="none",
            loop="asyncio",
            lifespan="off",
            log_config=None,  # never reconfigure the host process's logging
            log_level="warning",
            access_log=False,
            backlog=1024,
            timeout_graceful_shutdown=2,
        )
        server = _Uvicorn(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="twilio-simulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the Twilio simulator did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            server.should_exit = True
            server.wake()
            thread.join(timeout=5)
            if thread.is_alive():
                server.force_exit = True
                thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the simulated account -----------------------------------------------------------------------------
    def add_recording(
        self,
        *,
        size_bytes: int | None = None,
        duration_seconds: float | None = None,
        channels: int = 1,
        call_sid: str | None = None,
        date_created: datetime | None = None,
        **options: Any,
    ) -> SimRecording:
        """Add a recording (status ``completed`` unless ``status=`` says otherwise) whose WAV media is exactly
        ``size_bytes`` long or lasts ``duration_seconds``. Other options: ``source``, ``status``,
        ``error_code``, ``conference_sid``, ``seed``, ``sid``."""
        return self.state.add_recording(
            size_bytes=size_bytes,
            duration_seconds=duration_seconds,
            channels=channels,
            call_sid=call_sid,
            date_created=date_created,
            **options,
        )

    def recording(self, sid: str) -> SimRecording | None:
        return self.state.recording(sid)

    def recordings(self) -> list[SimRecording]:
        return self.state.recordings()

    def set_status(self, sid: str, status: str, *, error_code: int | None = None) -> None:
        self.state.set_status(sid, status, error_code=error_code)

    def add_fault(
        self,
        kind: str,
        fault: str,
        *,
        sid: str | None = None,
        times: int = 1,
        status: int = 500,
        retry_after: int = 1,
        delay_seconds: float = 0.05,
    ) -> None:
        """Queue ``fault`` for the next ``times`` requests of endpoint ``kind`` (metadata, media, delete,
        list) for recording ``sid`` (any recording when None)."""
        spec = Fault(fault, status=status, retry_after=retry_after, delay_seconds=delay_seconds)
        self.state.add_fault(kind, spec, sid=sid, times=times)

    def set_fail_rate(self, rate: float, *, seed: int = 0) -> None:
        """Answer a random share ``rate`` of Twilio requests with 429 or 500 (seeded, reproducible)."""
        self.state.set_fail_rate(rate, seed=seed)

    def events(self, kind: str | None = None, sid: str | None = None) -> list[Event]:
        return self.state.events(kind=kind, sid=sid)

    def reset(self) -> None:
        self.state.reset()
