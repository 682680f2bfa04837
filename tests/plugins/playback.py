"""Fixtures for playback, the JSON API and the web UI: a real Context (database from ``db``, a FileStore
in tmp_path), the real app behind a TestClient, and helpers that seed users and stored recordings the way
the auth services and the pipeline leave them."""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import shutil
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.db.database import Database
from callvault.db.models import AuditEntry, Recording, RecordingStatus, Role, Stage
from callvault.settings import MediaFormat, Settings, load_settings
from callvault.storage import keys
from callvault.storage.base import Store

if TYPE_CHECKING:
    from callvault.context import Context

# The app, the auth services and the stores are imported where used: this plugin is loaded for the whole
# suite, and a module another engineer is still writing must not break collection of unrelated tests.

PASSWORD = "correct horse battery staple"
ACCOUNT_A = "AC" + "a" * 32
ACCOUNT_B = "AC" + "b" * 32
SECRET = "test-secret-key-" + "x" * 32
SESSION = "cv_session"


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def wav_bytes(seconds: float, *, rate: int = 8000, channels: int = 1) -> bytes:
    """A valid 16-bit PCM WAV: a 440 Hz square wave, so a player has real audio to decode."""
    period = max(rate // 440, 2)
    frame_high = (6000).to_bytes(2, "little", signed=True) * channels
    frame_low = (-6000).to_bytes(2, "little", signed=True) * channels
    one_period = frame_high * (period // 2) + frame_low * (period - period // 2)
    frames = int(seconds * rate)
    samples = (one_period * (frames // period + 1))[: frames * 2 * channels]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples)
    return buffer.getvalue()


def _wav_info(body: bytes) -> tuple[int, int]:
    """(whole seconds, channels) of a WAV body; (1, 1) for anything else."""
    try:
        with wave.open(io.BytesIO(body)) as wav:
            return max(1, round(wav.getnframes() / wav.getframerate())), wav.getnchannels()
    except (wave.Error, EOFError):
        return 1, 1


class UnusedGateway:
    """Playback and the UI never talk to Twilio; any call here is a bug in the code under test."""

    def fetch_metadata(self, account_sid: str, recording_sid: str) -> Any:
        raise AssertionError("the web UI must not call Twilio")

    def open_media(self, account_sid: str, recording_sid: str, media_format: str) -> Any:
        raise AssertionError("the web UI must not call Twilio")

    def delete_recording(self, account_sid: str, recording_sid: str) -> bool:
        raise AssertionError("the web UI must not call Twilio")


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "storage_url": f"file://{data_dir / 'store'}",
        "secret_key": SECRET,
    }
    values.update(overrides)
    return load_settings(**values)


def make_context(db: Database, store: Store, settings: Settings) -> Context:
    from callvault.context import Context

    return Context(
        settings=settings,
        db=db,
        store=store,
        gateway=UnusedGateway(),  # type: ignore[arg-type]
        secret_key=settings.load_secret_key(),
    )


@dataclass
class Vault:
    """One callvault (context + app) and the ways a test prepares and inspects it."""

    ctx: Context
    clients: list[TestClient] = field(default_factory=list)

    def __post_init__(self) -> None:
        from callvault.web.app import create_app

        self.app = create_app(self.ctx)

    # -- clients ---------------------------------------------------------------------------------
    def client(self, base_url: str = "http://testserver", **headers: str) -> TestClient:
        client = TestClient(self.app, base_url=base_url, follow_redirects=False, headers=headers or None)
        client.__enter__()
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.__exit__(None, None, None)

    def login(self, email: str, password: str = PASSWORD, *, client: TestClient | None = None) -> TestClient:
        """A browser that went through the login form (pre-session CSRF included)."""
        browser = client or self.client()
        page = browser.get("/login")
        assert page.status_code == 200, page.text
        answer = browser.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": form_csrf(page.text), "next": "/"},
        )
        assert answer.status_code == 303, answer.text
        return browser

    def csrf_of(self, browser: TestClient) -> str:
        """The CSRF token the pages give this browser's session."""
        page = browser.get("/")
        assert page.status_code == 200, page.text
        return form_csrf(page.text)

    # -- users and tokens -------------------------------------------------------------------------
    def add_user(
        self,
        email: str,
        *,
        role: Role = Role.LISTENER,
        accounts: list[str] | None = None,
        password: str | None = PASSWORD,
    ) -> None:
        from callvault.auth import users as auth_users

        with self.ctx.db.write() as session:
            auth_users.add_user(
                session, email=email, role=role, accounts=accounts, password=password, actor="test"
            )

    def token(self, email: str) -> tuple[int, str]:
        from callvault.auth import tokens as auth_tokens

        with self.ctx.db.write() as session:
            token, raw = auth_tokens.create_token(
                session, email=email, name="test", expires_days=None, actor="test"
            )
            return token.id, raw

    # -- recordings -------------------------------------------------------------------------------
    def seed(
        self,
        *,
        account_sid: str = ACCOUNT_A,
        body: bytes | None = None,
        status: RecordingStatus = RecordingStatus.STORED,
        created_at: datetime | None = None,
        call_sid: str | None = None,
        in_store: bool = True,
    ) -> str:
        """A recording row as the pipeline leaves it, with its bytes in the store (unless pending)."""
        sid = new_sid("RE")
        body = body if body is not None else wav_bytes(1.0)
        recorded = (created_at or datetime.now(UTC)) - timedelta(minutes=1)
        key = keys.recording_key(
            account_sid=account_sid, recording_sid=sid, recorded_at=recorded, media_format=MediaFormat.WAV
        )
        stored = status in (RecordingStatus.STORED, RecordingStatus.DELETED) and in_store
        if stored and status is RecordingStatus.STORED:
            self.ctx.store.put(key, [body], content_type="audio/wav", max_bytes=len(body) + 1)
        with self.ctx.db.write() as session:
            session.add(
                Recording(
                    sid=sid,
                    account_sid=account_sid,
                    call_sid=call_sid or new_sid("CA"),
                    source="DialVerb",
                    channels=_wav_info(body)[1],
                    duration_seconds=_wav_info(body)[0],
                    recorded_at=recorded,
                    status=status.value,
                    stage=Stage.DONE.value if status is not RecordingStatus.PENDING else Stage.FETCH.value,
                    content_type="audio/wav" if stored else None,
                    size_bytes=len(body) if stored else None,
                    sha256=hashlib.sha256(body).hexdigest() if stored else None,
                    storage_key=key if stored else None,
                    created_at=created_at or datetime.now(UTC),
                    stored_at=datetime.now(UTC) if stored else None,
                    deleted_at=datetime.now(UTC) if status is RecordingStatus.DELETED else None,
                )
            )
        return sid

    def recording(self, sid: str) -> Recording:
        with self.ctx.db.read() as session:
            rec = session.get(Recording, sid)
            assert rec is not None
            return rec

    def audit(self, action: str | None = None) -> list[AuditEntry]:
        """Audit entries, oldest first (optionally one action)."""
        with self.ctx.db.read() as session:
            query = select(AuditEntry).order_by(AuditEntry.id)
            if action is not None:
                query = query.where(AuditEntry.action == action)
            return list(session.scalars(query))

    def chain_ok(self) -> bool:
        from callvault.audit import trail

        with self.ctx.db.read() as session:
            return trail.verify(session).ok


_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')


def form_csrf(html: str) -> str:
    match = _CSRF_FIELD.search(html)
    assert match is not None, "no csrf_token field on the page"
    return match.group(1)


def _factory(url: str, tmp_path: Path) -> Iterator[Any]:
    from callvault.storage.local import FileStore

    built: list[Vault] = []
    databases: list[Database] = []

    def build(*, store: Store | None = None, **overrides: Any) -> Vault:
        data_dir = tmp_path / f"vault{len(built)}"
        settings = make_settings(url, data_dir, **overrides)
        database = Database(url)
        databases.append(database)
        vault = Vault(make_context(database, store or FileStore(data_dir / "store"), settings))
        built.append(vault)
        return vault

    yield build
    for vault in built:
        vault.close()
    for database in databases:
        database.dispose()


@pytest.fixture
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """argon2id at minimal cost: production parameters take most of a second per hash, and these tests are
    about what happens around the hash (tests/auth covers the real parameters)."""
    from argon2 import PasswordHasher

    from callvault.auth import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    passwords.dummy_hash.cache_clear()
    yield
    passwords.dummy_hash.cache_clear()


@pytest.fixture
def vault_factory(database_url: str, tmp_path: Path, fast_passwords: None) -> Iterator[Any]:
    """``vault_factory(store=None, **settings_overrides)`` builds a Vault on the test database: SQLite and
    PostgreSQL (for tests whose outcome depends on the database: transactions, queries, sessions)."""
    yield from _factory(database_url, tmp_path)


@pytest.fixture(scope="session")
def lite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database made once per session; each test gets a copy (migrating costs more)."""
    from callvault.db.migrate import upgrade

    path = tmp_path_factory.mktemp("lite-template") / "callvault.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database)
    database.dispose()
    return path


@pytest.fixture
def lite_vault_factory(tmp_path: Path, lite_template: Path, fast_passwords: None) -> Iterator[Any]:
    """Like ``vault_factory`` on SQLite only, for tests about HTTP behaviour rather than the database."""
    path = tmp_path / "lite.db"
    shutil.copyfile(lite_template, path)
    yield from _factory(f"sqlite:///{path}", tmp_path)


def with_people(vault: Vault) -> Vault:
    """An admin, a listener for account A only, and an auditor (all with PASSWORD)."""
    vault.add_user("admin@example.com", role=Role.ADMIN)
    vault.add_user("lena@example.com", role=Role.LISTENER, accounts=[ACCOUNT_A])
    vault.add_user("audrey@example.com", role=Role.AUDITOR)
    return vault


@pytest.fixture
def vault(vault_factory: Any) -> Vault:
    """A file-store vault with people (see :func:`with_people`), on SQLite and PostgreSQL."""
    return with_people(vault_factory())


@pytest.fixture
def lite_vault(lite_vault_factory: Any) -> Vault:
    """A file-store vault with people (see :func:`with_people`), on SQLite only."""
    return with_people(lite_vault_factory())
