"""Fixtures for the identity tests: settings with a small throttle, and a quick way to make users."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from callvault.auth import passwords
from callvault.auth.users import add_user
from callvault.db.database import Database
from callvault.db.models import Role
from callvault.settings import Settings, load_settings

PASSWORD = "correct horse battery staple"
AC1 = "AC" + "1" * 32
AC2 = "AC" + "2" * 32

MakeUser = Callable[..., int]


REAL_HASHER = passwords._hasher


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """argon2id with minimal cost parameters: the production cost takes most of a second per hash on a busy
    CI machine, and these tests are about what happens around the hash. ``real_argon2`` undoes it."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    passwords.dummy_hash.cache_clear()
    yield
    passwords.dummy_hash.cache_clear()


@pytest.fixture
def real_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", REAL_HASHER)


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data", login_max_failures=3, login_window_seconds=600, session_ttl_hours=1
    )


@pytest.fixture
def make_user(db: Database) -> MakeUser:
    """``make_user(email, role=Role.LISTENER, accounts=None, password=PASSWORD) -> user id``."""

    def make(
        email: str,
        *,
        role: Role = Role.LISTENER,
        accounts: list[str] | None = None,
        password: str | None = PASSWORD,
    ) -> int:
        with db.write() as session:
            return add_user(session, email=email, role=role, accounts=accounts, password=password).id

    return make
