"""A witness of custody: wraps the simulator's deletion so that, at the instant Twilio would delete a
recording, the test checks the vault holds a complete, correct copy. Counts deletions per recording."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from callvault.twilio.simulator.server import SimulatorServer

# Reads the stored object for a recording SID at this instant (None when absent).
StoreReader = Callable[[str], bytes | None]


@dataclass
class CustodyWitness:
    simulator: SimulatorServer
    read_stored: StoreReader
    deletions: Counter[str] = field(default_factory=Counter)
    early: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> CustodyWitness:
        original = self.simulator.state.delete

        def witnessed_delete(sid: str) -> bool:
            rec = self.simulator.recording(sid)
            stored = self.read_stored(sid)
            intact = (
                rec is not None
                and stored is not None
                and hashlib.sha256(stored).hexdigest() == rec.sha256("wav")
            )
            deleted = original(sid)
            with self._lock:
                self.deletions[sid] += 1  # every DELETE that reached Twilio, whatever it answered
                if deleted and not intact:
                    self.early.append(sid)
            return deleted

        self.simulator.state.delete = witnessed_delete  # type: ignore[method-assign]
        return self

    def assert_custody_held(self) -> None:
        assert self.early == [], f"deleted at Twilio without a complete copy in the vault: {self.early}"
        twice = {sid: n for sid, n in self.deletions.items() if n > 1}
        assert twice == {}, f"deleted at Twilio more than once: {twice}"
