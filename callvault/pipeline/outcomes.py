"""Job control flow, which is not an error (huey's RetryTask / CancelExecution).

A step raises :class:`RetryLater` or :class:`Permanent`; the worker has one branch per outcome, each
recording a state change. :class:`LeaseLost` means another worker owns the recording now: record nothing.
"""

from __future__ import annotations


class Outcome(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryLater(Outcome):
    """Try again after ``delay`` seconds (None: the worker's exponential backoff with jitter)."""

    def __init__(self, reason: str, *, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class Permanent(Outcome):
    """Stop trying: the recording ends ``failed`` with this reason, its Twilio copy untouched."""


class LeaseLost(Outcome):
    """The lease expired and may have been taken over; stop without writing."""


class Interrupted(Outcome):
    """The worker is shutting down: release the recording for another worker, without counting the attempt."""
