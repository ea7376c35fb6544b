"""sqlgate's own table definitions: the audit log and the demo shop.

These are the models the migration scripts are checked against (autogenerate must find no
drift, see tests/test_migrations.py). They live with the migrations so that the modules
that use the tables (``audit``, ``demo``) import them from here, never the other way round.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

AUDIT_TABLE = "sqlgate_audit"

# -- the sqlgate branch: the audit log -------------------------------------------------

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
    sa.Column("sql_text", _LONG_TEXT, nullable=True),
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

# -- the demo branch: a small shop -----------------------------------------------------

demo_metadata = sa.MetaData()

customers = sa.Table(
    "customers",
    demo_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("email", sa.String(200), nullable=False, unique=True),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("created_at", sa.Date, nullable=False),
)
products = sa.Table(
    "products",
    demo_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("category", sa.String(50), nullable=False),
    sa.Column("price", sa.Numeric(10, 2), nullable=False),
)
orders = sa.Table(
    "orders",
    demo_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False, index=True),
    sa.Column("ordered_at", sa.Date, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
)
order_items = sa.Table(
    "order_items",
    demo_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id"), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", sa.Numeric(10, 2), nullable=False),
)

# -- what autogenerate compares: both branches -----------------------------------------

target_metadata = sa.MetaData()
for _source in (audit_metadata, demo_metadata):
    for _table in _source.tables.values():
        _table.to_metadata(target_metadata)
