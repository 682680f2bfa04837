"""`callvault audit verify|export` as real subprocesses: exit codes after tampering, output formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from sqlalchemy import text

from callvault.audit import trail
from callvault.db.database import Database
from callvault.errors import AuditChainBroken
from tests.plugins.cli import Cli

DAY1 = datetime(2026, 2, 1, 10, 0, tzinfo=UTC)
DAY2 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)


def seed(cli: Cli) -> Database:
    db = Database(cli.database_url)
    with db.write() as session:
        trail.append(session, actor="a@example.com", action="login.success", client_ip="192.0.2.1", now=DAY1)
        trail.append(session, actor="a@example.com", action="playback.link", detail={"ttl": 30}, now=DAY2)
        trail.append(session, actor="cli", action="user.add", detail={"email": "b@example.com"}, now=DAY2)
    return db


def test_audit_verify_exits_zero_when_intact_and_names_the_edited_entry_after_tampering(cli: Cli) -> None:
    db = seed(cli)
    try:
        intact = cli.ok("audit", "verify")
        assert intact.stdout == "audit trail intact: 3 entries\n"
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE audit_entries SET client_ip = '203.0.113.66' WHERE id = 1"))
        broken = cli("audit", "verify")
        assert broken.returncode == AuditChainBroken.exit_code == 3
        assert broken.stderr.startswith("error: audit trail broken at entry 1:")
        assert len(broken.stderr.splitlines()) == 1 and broken.stdout == ""
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE audit_entries SET client_ip = '192.0.2.1' WHERE id = 1"))
            conn.execute(text("DELETE FROM audit_entries WHERE id = 3"))
        truncated = cli("audit", "verify")
        assert truncated.returncode == 3
        assert truncated.stderr.startswith("error: audit trail broken at entry 3:")
    finally:
        db.dispose()


def test_audit_export_writes_jsonl_or_csv_with_hashes_from_a_day_on(cli: Cli) -> None:
    seed(cli).dispose()
    rows = [json.loads(line) for line in cli.ok("audit", "export").stdout.splitlines()]
    assert [(r["id"], r["action"]) for r in rows] == [
        (1, "login.success"),
        (2, "playback.link"),
        (3, "user.add"),
    ]
    assert rows[0]["prev_hash"] == "0" * 64 and rows[1]["prev_hash"] == rows[0]["entry_hash"]
    table = list(
        csv.DictReader(
            io.StringIO(cli.ok("audit", "export", "--since", "2026-02-02", "--format", "csv").stdout)
        )
    )
    assert [(r["id"], r["action"], r["entry_hash"]) for r in table] == [
        ("2", "playback.link", rows[1]["entry_hash"]),
        ("3", "user.add", rows[2]["entry_hash"]),
    ]
    bad = cli("audit", "export", "--since", "02/02/2026")
    assert (bad.returncode, bad.stdout, bad.stderr) == (2, "", "error: --since must be a date, YYYY-MM-DD\n")
