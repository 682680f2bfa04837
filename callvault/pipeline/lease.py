"""Fenced access to one claimed recording: every write checks the lease is still ours, and extends it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from callvault.db.database import Database
from callvault.db.recordings import Claim, fenced_update
from callvault.pipeline.outcomes import LeaseLost


class Lease:
    def __init__(
        self, db: Database, claim: Claim, *, lease_seconds: float, clock: Callable[[], datetime]
    ) -> None:
        self.db = db
        self.claim = claim
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._renewed = time.monotonic()

    @property
    def sid(self) -> str:
        return self.claim.sid

    def write(self, values: dict[str, Any], *, also: Callable[[Session], None] | None = None) -> None:
        """Apply ``values`` (and ``also``, in the same transaction) while the lease is ours; extend it.

        Raises :class:`LeaseLost` when another worker may own the recording now.
        """
        now = self.clock()
        values = {"lease_expires_at": now + timedelta(seconds=self.lease_seconds), **values}
        with self.db.write() as session:
            if not fenced_update(session, sid=self.claim.sid, owner=self.claim.owner, now=now, values=values):
                raise LeaseLost("the lease on this recording expired and may have been taken over")
            if also is not None:
                also(session)
        self._renewed = time.monotonic()

    def renew(self) -> None:
        self.write({})

    def renew_if_due(self) -> None:
        """Renew once a third of the lease has passed: cheap enough to call on every chunk."""
        if time.monotonic() - self._renewed > self.lease_seconds / 3:
            self.renew()

    def finish(self, values: dict[str, Any], *, also: Callable[[Session], None] | None = None) -> None:
        """Final write of an attempt: apply ``values`` and drop the lease."""
        self.write({**values, "lease_owner": None, "lease_expires_at": None}, also=also)
