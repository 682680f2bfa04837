"""Factories shared by the tests."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from callvault.context import Context
from callvault.db.database import Database
from callvault.settings import Settings, load_settings
from callvault.storage.local import FileStore
from callvault.twilio.gateway import TwilioAccount, TwilioGateway


def random_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {"data_dir": tmp_path / "data", "secret_key": "test-secret-key-" + "x" * 32}
    base.update(overrides)
    return load_settings(**base)


def make_context(
    *, settings: Settings, database_url: str, account: TwilioAccount, store: Any = None
) -> Context:
    """A Context on a real database, a real store (file store in DATA_DIR by default), a real gateway."""
    return Context(
        settings=settings,
        db=Database(database_url),
        store=store if store is not None else FileStore(settings.data_dir / "recordings"),
        gateway=TwilioGateway(
            account, timeout_seconds=5.0, max_media_bytes=settings.max_media_mb * 1024 * 1024
        ),
        secret_key=settings.load_secret_key(),
        auth_tokens={account.account_sid: account.auth_token},
    )
