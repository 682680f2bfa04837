"""Twilio simulator fixtures: a real simulator on a loopback port, started and stopped around each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callvault.twilio.gateway import TwilioGateway
from callvault.twilio.simulator import SimulatorServer


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    """A started SimulatorServer with fresh credentials and no recordings."""
    with SimulatorServer() as server:
        yield server


@pytest.fixture
def twilio_gateway(simulator: SimulatorServer) -> Iterator[TwilioGateway]:
    """A TwilioGateway talking to ``simulator`` with its API key (the recommended credentials)."""
    gateway = TwilioGateway(simulator.twilio_account(), timeout_seconds=5.0, max_media_bytes=64 * 1024 * 1024)
    yield gateway
    gateway.close()
