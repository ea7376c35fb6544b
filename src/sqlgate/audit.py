"""The audit log: one row per tool call in ``sqlgate_audit``, written off the request path.

Placeholder: table definition first; the writer follows.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

AUDIT_TABLE = "sqlgate_audit"

audit_metadata = sa.MetaData()

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

audit_table = sa.Table(
    AUDIT_TABLE,
    audit_metadata,
    sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("at", _TIME, nullable=False, index=True),  # call start, UTC
    sa.Column("request_id", sa.String(32), nullable=False),
    sa.Column("transport", sa.String(20), nullable=True),
    sa.Column("client", sa.String(200), nullable=True),
    sa.Column("tool", sa.String(100), nullable=False),
    sa.Column("database_name", sa.String(100), nullable=True),
    sa.Column("sql", _LONG_TEXT, nullable=True),
    sa.Column("parameters", sa.Text(), nullable=True),
    sa.Column("verdict", sa.String(10), nullable=True),
    sa.Column("code", sa.String(40), nullable=True),
    sa.Column("statement_kind", sa.String(40), nullable=True),
    sa.Column("tables", sa.Text(), nullable=True),
    sa.Column("row_count", sa.Integer(), nullable=True),
    sa.Column("rows_affected", sa.Integer(), nullable=True),
    sa.Column("duration_ms", sa.Float(), nullable=False),
    sa.Column("outcome", sa.String(10), nullable=False),
)
