"""A Twilio simulator over real HTTP: the Recordings API subset callvault uses, fault injection, signed
status callbacks, and generated audio. Used by the tests, the benchmarks and ``callvault serve``'s demo."""

from callvault.twilio.simulator.server import SimulatorServer
from callvault.twilio.simulator.state import Event, Fault, SimRecording

__all__ = ["Event", "Fault", "SimRecording", "SimulatorServer"]
