"""Assembling a running process from settings: the context, the worker, demo mode. Used by the CLI."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from callvault import sids
from callvault.context import Context
from callvault.db.database import Database
from callvault.errors import ConfigError, Unavailable
from callvault.settings import Settings
from callvault.storage.factory import open_store
from callvault.twilio.gateway import TwilioAccount, TwilioGateway

if TYPE_CHECKING:
    from callvault.twilio.simulator.server import SimulatorServer

log = logging.getLogger(__name__)


def build_context(settings: Settings, *, account: TwilioAccount | None = None) -> Context:
    """Wire database, store and Twilio gateway from ``settings`` (or the demo simulator's ``account``)."""
    account = account or TwilioAccount.from_settings(settings)
    if account is None:
        raise ConfigError(
            "CALLVAULT_TWILIO_ACCOUNT_SID: not set (demo mode runs only inside `callvault serve`)"
        )
    db = Database(
        settings.database_url,
        pool_size=settings.worker_concurrency + 8,
        sqlite_busy_timeout=settings.sqlite_busy_timeout_seconds,
    )
    store = open_store(settings)
    gateway = TwilioGateway(
        account,
        timeout_seconds=settings.http_timeout_seconds,
        max_media_bytes=settings.max_media_mb * 1024 * 1024,
    )
    return Context(
        settings=settings,
        db=db,
        store=store,
        gateway=gateway,
        secret_key=settings.load_secret_key(),
        auth_tokens={account.account_sid: account.auth_token},
    )


def require_current_schema(db: Database) -> None:
    """Refuse to start on a database that ``callvault db upgrade`` has not prepared."""
    try:
        with db.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    except Exception as exc:  # any driver error here means "cannot reach the database"
        raise Unavailable("the database is unavailable") from exc
    if "recordings" not in tables:
        raise ConfigError("CALLVAULT_DATABASE_URL: the schema is missing: run `callvault db upgrade` first")


def audit_twilio_delete(session: Session, sid: str, detail: dict[str, object]) -> None:
    """The pipeline's hook: every deletion at Twilio is in the audit trail, in the same transaction."""
    from callvault.audit.trail import append

    append(session, actor="worker", action="twilio.delete", recording_sid=sid, detail=dict(detail))


@dataclass
class Demo:
    simulator: SimulatorServer
    settings: Settings
    account: TwilioAccount


@contextmanager
def demo_simulator(settings: Settings) -> Iterator[Demo]:
    """Demo mode: a built-in Twilio simulator on loopback stands in for Twilio."""
    from callvault.twilio.simulator.server import SimulatorServer

    # The demo account is kept in DATA_DIR so a restarted demo shows the same account's recordings.
    path = settings.data_dir / "demo-account.json"
    try:
        saved = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        saved = {}
    if not (isinstance(saved, dict) and sids.is_sid(saved.get("account_sid"), "AC")):
        saved = {"account_sid": "AC" + secrets.token_hex(16), "auth_token": secrets.token_hex(16)}
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved))
        path.chmod(0o600)
    with SimulatorServer(account_sid=saved["account_sid"], auth_token=str(saved["auth_token"])) as simulator:
        demo_settings = settings.model_copy(update={"twilio_api_base_url": simulator.base_url})
        account = TwilioAccount(
            account_sid=simulator.account_sid,
            auth_token=simulator.auth_token,
            api_key_sid=simulator.api_key_sid,
            api_key_secret=simulator.api_key_secret,
            api_base_url=simulator.base_url,
        )
        yield Demo(simulator=simulator, settings=demo_settings, account=account)
