"""Create the audit chain's head row with the schema.

Made lazily by the first append before, two appenders racing on a fresh PostgreSQL database could see
"no head" and "an entry already exists" in one transaction (READ COMMITTED) and report a broken chain.
With the row always present, every appender simply locks it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    head = sa.table(
        "audit_head",
        sa.column("id", sa.Integer),
        sa.column("last_id", sa.Integer),
        sa.column("last_hash", sa.String),
    )
    conn = op.get_bind()
    if conn.execute(sa.select(sa.func.count()).select_from(head)).scalar_one() == 0:
        op.bulk_insert(head, [{"id": 1, "last_id": 0, "last_hash": GENESIS_HASH}])


def downgrade() -> None:
    op.execute("DELETE FROM audit_head WHERE id = 1 AND last_id = 0")
