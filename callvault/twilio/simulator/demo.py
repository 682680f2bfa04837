"""Demo mode: simulated calls whose recordings arrive through signed status callbacks, like Twilio's."""

from __future__ import annotations

import logging
import random
import threading

import httpx

from callvault.twilio.simulator.callbacks import recording_status_params, send_status_callback
from callvault.twilio.simulator.server import SimulatorServer

log = logging.getLogger(__name__)

_DELIVERY_ATTEMPTS = 5


class DemoCaller:
    """A daemon thread placing ``calls`` simulated calls, one every ``interval_seconds``.

    Each call adds a recording of a few seconds of generated audio to the simulator (``processing``), sends
    an ``in-progress`` callback, marks it ``completed`` and sends the ``completed`` callback, both signed with
    the simulator's auth token. A callback that cannot be delivered is retried a few times, then skipped
    (callvault's reconciliation finds such recordings, as it would at Twilio).
    """

    def __init__(
        self, server: SimulatorServer, *, callback_url: str, calls: int, interval_seconds: float
    ) -> None:
        self.server = server
        self.callback_url = callback_url
        self.calls = calls
        self.interval_seconds = interval_seconds
        self.placed: list[str] = []  # RecordingSids, in order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-caller", daemon=True)
        self._rng = random.Random()  # noqa: S311 - call lengths, not secrets

    def start(self) -> DemoCaller:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait until every call was placed (or the caller was stopped)."""
        self._thread.join(timeout)

    def _run(self) -> None:
        with httpx.Client(timeout=15.0) as client:
            for number in range(self.calls):
                if number and self._stop.wait(self.interval_seconds):
                    return
                self._place_call(client)

    def _place_call(self, client: httpx.Client) -> None:
        recording = self.server.add_recording(
            duration_seconds=self._rng.uniform(3.0, 8.0),
            channels=self._rng.choice((1, 2)),
            status="processing",
        )
        self.placed.append(recording.sid)
        if not self._deliver(client, recording.sid, "in-progress"):
            return
        self.server.set_status(recording.sid, "completed")
        self._deliver(client, recording.sid, "completed")

    def _deliver(self, client: httpx.Client, sid: str, status: str) -> bool:
        """Send one callback, retrying a few times; False when stop() was called meanwhile."""
        recording = self.server.recording(sid)
        assert recording is not None
        params = recording_status_params(recording, status=status, api_base_url=self.server.base_url)
        for attempt in range(_DELIVERY_ATTEMPTS):
            try:
                response = send_status_callback(
                    self.callback_url, auth_token=self.server.auth_token, params=params, client=client
                )
            except httpx.TransportError as exc:
                log.warning("demo callback %s for %s failed: %s", status, sid, type(exc).__name__)
            else:
                if response.is_success:
                    return True
                log.warning("demo callback %s for %s answered %s", status, sid, response.status_code)
            if self._stop.wait(min(2.0**attempt, 10.0)):
                return False
        log.warning("demo callback %s for %s given up", status, sid)
        return True
