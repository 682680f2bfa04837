from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callvault.context import Context
from callvault.pipeline.intake import StatusCallback, record_status_callback
from callvault.pipeline.worker import Worker
from callvault.twilio.simulator.server import SimulatorServer
from tests.factories import make_context, make_settings


class FakeClock:
    """Wall-clock time that a test can move forward, so retries and lease expiry happen without sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Rig:
    ctx: Context
    simulator: SimulatorServer
    clock: FakeClock

    def worker(self, **kwargs: Any) -> Worker:
        return Worker(self.ctx, concurrency=1, clock=self.clock, **kwargs)

    def queue(self, sid: str, *, status: str = "completed") -> None:
        rec = self.simulator.recording(sid)
        assert rec is not None
        callback = StatusCallback(
            account_sid=self.simulator.account_sid,
            recording_sid=sid,
            call_sid=rec.call_sid,
            status=status,
            duration_seconds=None,
            channels=None,
            source=None,
            started_at=None,
            error_code=None,
        )
        record_status_callback(self.ctx.db, callback, now=self.clock())

    def drain(self, *, max_rounds: int = 50, step_seconds: float = 3600.0) -> int:
        """Run attempts until nothing is due even after moving the clock past every retry delay."""
        worker = self.worker()
        rounds = 0
        while rounds < max_rounds:
            if worker.run_once():
                rounds += 1
                continue
            self.clock.advance(step_seconds)
            if not worker.run_once():
                break
            rounds += 1
        return rounds


@pytest.fixture
def rig(tmp_path: Path, database_url: str, simulator: SimulatorServer) -> Iterator[Rig]:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        twilio_account_sid=simulator.account_sid,
        twilio_auth_token=simulator.auth_token,
        twilio_api_base_url=simulator.base_url,
        public_url="http://127.0.0.1:9",
        max_attempts=4,
        retry_base_seconds=1,
        retry_max_seconds=60,
    )
    ctx = make_context(settings=settings, database_url=database_url, account=simulator.twilio_account())
    yield Rig(ctx=ctx, simulator=simulator, clock=FakeClock())
    ctx.close()
