"""Who is asking, and what they may do. Built by ``auth.tokens`` / ``auth.sessions`` (or the CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from callvault.db.models import Role


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``accounts`` is ``None`` for "every account"."""

    user_id: int | None  # None for the operator's CLI
    email: str
    role: Role
    accounts: frozenset[str] | None
    via: str  # "session" | "token:<id>" | "cli"

    @property
    def actor(self) -> str:
        """How the audit trail names this caller."""
        return self.email if self.via in ("session", "cli") else f"{self.email} ({self.via})"

    def can_hear(self, account_sid: str) -> bool:
        """Listeners hear only their accounts; admins and auditors hear every account they are scoped to."""
        return self.accounts is None or account_sid in self.accounts

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def can_audit(self) -> bool:
        return self.role in (Role.ADMIN, Role.AUDITOR)


CLI_PRINCIPAL = Principal(user_id=None, email="cli", role=Role.ADMIN, accounts=None, via="cli")
