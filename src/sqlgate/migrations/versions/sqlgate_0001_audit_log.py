"""sqlgate's audit log table.

Revision ID: sqlgate_0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "sqlgate_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("sqlgate",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sqlgate_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"), nullable=False),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("transport", sa.String(20), nullable=True),
        sa.Column("client", sa.String(200), nullable=True),
        sa.Column("tool", sa.String(100), nullable=False),
        sa.Column("database_name", sa.String(100), nullable=True),
        sa.Column("sql_text", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"), nullable=True),
        sa.Column("parameters", sa.Text(), nullable=True),
        sa.Column("verdict", sa.String(10), nullable=True),
        sa.Column("code", sa.String(40), nullable=True),
        sa.Column("statement_kind", sa.String(40), nullable=True),
        sa.Column("table_names", sa.Text(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.Column("rows_affected", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
    )
    op.create_index("ix_sqlgate_audit_at", "sqlgate_audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_sqlgate_audit_at", table_name="sqlgate_audit")
    op.drop_table("sqlgate_audit")
