"""Approximate row counts for describe_schema and health_check: catalog estimates, exact counts when small.

Each dialect names its catalog estimate (``Dialect.row_estimate_sql``: PostgreSQL's
``pg_class.reltuples``, maintained by VACUUM/ANALYZE, -1 before the first; MySQL/MariaDB's
``information_schema.tables.table_rows``, which InnoDB samples) or has none (SQLite: always
``count(*)``). An estimate under ``EXACT_BELOW`` (or missing) is replaced by an exact
``count(*)``: small tables are cheap to count, and a fresh table's estimate is often 0 or -1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlgate.db.dialects import Dialect
    from sqlgate.db.engines import Database

EXACT_BELOW = 10_000


def source(dialect: Dialect) -> str:
    """Where the counts come from, as describe_schema says it."""
    if dialect.row_estimate_sql is None:
        return dialect.row_count_source
    return f"{dialect.row_count_source} (exact count(*) below {EXACT_BELOW})"


def count_rows(sync_conn: Any, dialect: Dialect, schema: str | None, name: str) -> tuple[int, bool]:
    """``(rows, estimated)`` for one table: a catalog estimate where one exists and is large."""
    estimate = None
    if dialect.row_estimate_sql is not None:
        # sqlgate's own fixed catalog statement, with bound values: it bypasses safety.check.
        estimate = sync_conn.execute(sa.text(dialect.row_estimate_sql), {"schema": schema, "name": name}).scalar()
    if estimate is not None and int(estimate) >= EXACT_BELOW:
        return int(estimate), True
    # Identifiers come from reflection and are quoted by SQLAlchemy.
    exact = sync_conn.execute(sa.select(sa.func.count()).select_from(sa.table(name, schema=schema))).scalar()
    return int(exact or 0), False


def _count(sync_conn: Any, dialect: Dialect, tables: list[tuple[str | None, str]]) -> list[tuple[int, bool]]:
    return [count_rows(sync_conn, dialect, schema, name) for schema, name in tables]


async def row_counts(database: Database, tables: list[tuple[str | None, str]]) -> list[tuple[int, bool]]:
    """``(rows, estimated)`` for each ``(schema, name)``, in one connection."""
    if not tables:
        return []
    from sqlgate.db import boundary

    counted: list[tuple[int, bool]] = await boundary.run_sync(database, _count, database.driver, tables)
    return counted
