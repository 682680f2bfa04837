"""The process's wiring: built once in an entry point from settings, passed to the web app and the worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from callvault.db.database import Database
from callvault.settings import Settings
from callvault.storage.base import Store
from callvault.twilio.gateway import Gateway


@dataclass
class Context:
    settings: Settings
    db: Database
    store: Store
    gateway: Gateway
    secret_key: bytes = field(repr=False)
    # Account SID -> AuthToken used to validate webhook signatures (the owning account's token).
    auth_tokens: dict[str, str] = field(default_factory=dict, repr=False)

    def close(self) -> None:
        """Release connections: database pool and Twilio HTTP clients."""
        self.gateway.close()
        self.db.dispose()
