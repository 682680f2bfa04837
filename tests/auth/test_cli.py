"""`callvault users …` and `callvault tokens …` as real subprocesses against a real database."""

from __future__ import annotations

import fcntl
import json
import os
import select
import subprocess
import termios
import time
from datetime import UTC, datetime

import pytest

from callvault.auth import sessions, tokens, users
from callvault.db.database import Database
from callvault.db.models import Role
from callvault.errors import Unauthenticated
from callvault.settings import load_settings
from tests.plugins.cli import CALLVAULT_BIN, Cli

PASSWORD = "the operator's passphrase"
AC_A, AC_B, AC_C = "AC" + "a" * 32, "AC" + "b" * 32, "AC" + "c" * 32


def user_emails(cli: Cli) -> list[str]:
    db = Database(cli.database_url)
    try:
        with db.read() as session:
            return [user.email for user in users.list_users(session)]
    finally:
        db.dispose()


def can_log_in(cli: Cli, email: str, password: str) -> bool:
    db = Database(cli.database_url)
    try:
        with db.write() as session:
            sessions.login(
                session,
                email=email,
                password=password,
                client_ip=None,
                user_agent=None,
                settings=load_settings(data_dir=cli.env["CALLVAULT_DATA_DIR"]),
                now=datetime.now(UTC),
            )
        return True
    except Unauthenticated:
        return False
    finally:
        db.dispose()


def test_users_add_takes_the_password_from_stdin_and_that_user_can_log_in(cli: Cli) -> None:
    result = cli.ok(
        "users", "add", "Root@Example.com", "--role", "admin", "--password-stdin", input_text=PASSWORD + "\n"
    )
    assert PASSWORD not in result.stdout + result.stderr
    accounts = ["--accounts", f"{AC_A},{AC_B}", "--accounts", AC_C]
    cli.ok("users", "add", "ear@example.com", "--role", "listener", *accounts, "--no-password")
    listed = [json.loads(line) for line in cli.ok("users", "list", "--json").stdout.splitlines()]
    assert [(u["email"], u["role"], u["accounts"], u["password"], u["disabled"]) for u in listed] == [
        ("root@example.com", "admin", None, True, False),
        ("ear@example.com", "listener", [AC_A, AC_B, AC_C], False, False),
    ]
    assert can_log_in(cli, "root@example.com", PASSWORD)
    assert not can_log_in(cli, "root@example.com", PASSWORD + "x")


def test_users_add_fails_in_one_line_without_a_password_source_or_with_bad_input(cli: Cli) -> None:
    cases = [
        (
            ["users", "add", "a@example.com", "--role", "admin"],
            "",
            "--password-stdin",
        ),  # no terminal, no default
        (
            ["users", "add", "a@example.com", "--role", "admin", "--password-stdin"],
            "short\n",
            "12 characters",
        ),
        (
            ["users", "add", "a@example.com", "--role", "boss", "--accounts", "AC1", "--no-password"],
            None,
            "--role",
        ),
    ]
    for args, stdin, hint in cases:
        result = cli(*args, input_text=stdin)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ") and hint in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1  # one line, never a traceback
    assert user_emails(cli) == []
    cli.ok("users", "add", "a@example.com", "--role", "admin", "--no-password")
    duplicate = cli("users", "add", "A@example.com", "--role", "admin", "--no-password")
    assert (duplicate.returncode, duplicate.stderr) == (5, "error: a user a@example.com already exists\n")
    assert user_emails(cli) == ["a@example.com"]


def test_users_add_asks_twice_on_a_terminal_without_echoing_the_password(cli: Cli) -> None:
    master, slave = os.openpty()

    def take_terminal() -> None:  # runs in the child after setsid: the pty becomes its controlling terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    child = subprocess.Popen(
        [str(CALLVAULT_BIN), "users", "add", "tty@example.com", "--role", "auditor"],
        env=cli.env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=take_terminal,  # noqa: PLW1509 - the documented way to acquire a controlling tty
    )
    os.close(slave)
    screen = ""

    def read_until(marker: str) -> None:
        nonlocal screen
        deadline = time.monotonic() + 60
        while marker not in screen:
            assert time.monotonic() < deadline, f"no {marker!r} in {screen!r}"
            if select.select([master], [], [], 1)[0]:
                try:
                    screen += os.read(master, 1024).decode(errors="replace")
                except OSError:  # EIO: the child closed the terminal
                    break

    try:
        read_until("Password: ")
        os.write(master, (PASSWORD + "\n").encode())
        read_until("confirmation: ")
        os.write(master, (PASSWORD + "\n").encode())
        read_until("added as auditor")
        assert child.wait(60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
    assert PASSWORD not in screen
    assert can_log_in(cli, "tty@example.com", PASSWORD)


def test_tokens_create_prints_the_token_alone_on_the_last_line_and_revoke_stops_it(cli: Cli) -> None:
    db = Database(cli.database_url)
    with db.write() as session:
        users.add_user(session, email="crm@example.com", role=Role.LISTENER, accounts=None, password=None)
    result = cli.ok("tokens", "create", "crm@example.com", "--name", "crm", "--expires-days", "7")
    lines = result.stdout.splitlines()
    raw = lines[-1]
    assert raw.startswith("cvt_") and raw.strip() == raw and len(raw) == 47
    assert len(lines) >= 2 and all(raw not in line for line in lines[:-1])
    try:
        with db.write() as session:
            assert tokens.resolve_token(session, raw, now=datetime.now(UTC)).email == "crm@example.com"
        (listed,) = [json.loads(line) for line in cli.ok("tokens", "list", "--json").stdout.splitlines()]
        assert (listed["email"], listed["name"], listed["state"]) == ("crm@example.com", "crm", "active")
        assert raw not in json.dumps(listed)
        cli.ok("tokens", "revoke", str(listed["id"]))
        with db.write() as session, pytest.raises(Unauthenticated):
            tokens.resolve_token(session, raw, now=datetime.now(UTC))
        missing = cli("tokens", "revoke", "999")
        assert (missing.returncode, missing.stderr) == (4, "error: no token 999\n")
    finally:
        db.dispose()
