"""Failpoints: named places where a test makes the worker process die with SIGKILL, for real.

Custody must survive a crash at any instant; tests prove it by killing a real ``callvault worker`` at each
step (fail-rs / FoundationDB style). Inactive unless CALLVAULT_FAILPOINTS names points (testing only):
``after_metadata,mid_download,mid_upload,after_upload,after_verify,before_twilio_delete,
after_twilio_delete``; a point may be
limited to one recording with ``point@RE…``.
"""

from __future__ import annotations

import os
import signal

POINTS = frozenset(
    {
        "after_metadata",
        "mid_download",
        "mid_upload",
        "after_upload",
        "after_verify",
        "before_twilio_delete",
        "after_twilio_delete",
    }
)


class Failpoints:
    def __init__(self, spec: str) -> None:
        self._armed: set[tuple[str, str | None]] = set()
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, sid = item.partition("@")
            if name not in POINTS:
                raise ValueError(f"unknown failpoint {name!r}")
            self._armed.add((name, sid or None))

    def __bool__(self) -> bool:
        return bool(self._armed)

    def hit(self, name: str, sid: str) -> None:
        """Kill this process (SIGKILL: no cleanup, no finally blocks) when ``name`` is armed for ``sid``."""
        if (name, None) in self._armed or (name, sid) in self._armed:
            os.kill(os.getpid(), signal.SIGKILL)


NONE = Failpoints("")
