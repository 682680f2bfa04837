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


def process_env(*, tmp_path: Path, database_url: str, storage_url: str, simulator: Any) -> dict[str, str]:
    """The environment of a real ``callvault`` process against ``simulator``: API-key credentials, short
    leases and fast retries, so crash and fault tests finish in seconds."""
    return {
        "CALLVAULT_DATA_DIR": str(tmp_path / "data"),
        "CALLVAULT_DATABASE_URL": database_url,
        "CALLVAULT_STORAGE_URL": storage_url,
        "CALLVAULT_SECRET_KEY": "process-secret-" + "k" * 40,
        "CALLVAULT_TWILIO_ACCOUNT_SID": simulator.account_sid,
        "CALLVAULT_TWILIO_AUTH_TOKEN": simulator.auth_token,
        "CALLVAULT_TWILIO_API_KEY_SID": simulator.api_key_sid,
        "CALLVAULT_TWILIO_API_KEY_SECRET": simulator.api_key_secret,
        "CALLVAULT_TWILIO_API_BASE_URL": simulator.base_url,
        "CALLVAULT_PUBLIC_URL": "http://127.0.0.1:9",
        "CALLVAULT_LEASE_SECONDS": "2",
        "CALLVAULT_WORKER_POLL_SECONDS": "0.1",
        "CALLVAULT_RETRY_BASE_SECONDS": "0.2",
        "CALLVAULT_RETRY_MAX_SECONDS": "1",
        "CALLVAULT_LOG_LEVEL": "INFO",
    }
