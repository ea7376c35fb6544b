"""Approximate row counts for describe_schema: catalog estimates, exact counts when small.

PostgreSQL: ``pg_class.reltuples`` (maintained by VACUUM/ANALYZE; -1 before the first).
MySQL/MariaDB: ``information_schema.tables.table_rows`` (InnoDB samples it).
SQLite has no maintained estimate (``sqlite_stat1`` exists only after ANALYZE and counts
index entries), so it always gets ``count(*)``. An estimate under ``EXACT_BELOW`` (or
missing) is replaced by an exact ``count(*)``: small tables are cheap to count, and a
fresh table's estimate is often 0 or -1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlgate.db.engines import Database

EXACT_BELOW = 10_000
SOURCES = {
    "postgresql": f"pg_class.reltuples estimate (exact count(*) below {EXACT_BELOW})",
    "mysql": f"information_schema.tables.table_rows estimate (exact count(*) below {EXACT_BELOW})",
    "sqlite": "exact count(*)",
}
_ESTIMATE_SQL = {
    # sqlgate's own fixed catalog statements, with bound values: they bypass safety.check.
    "postgresql": (
        "SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = :name AND n.nspname = COALESCE(CAST(:schema AS text), current_schema())"
    ),
    "mysql": (
        "SELECT table_rows FROM information_schema.tables "
        "WHERE table_schema = COALESCE(:schema, DATABASE()) AND table_name = :name"
    ),
}


def _count(sync_conn: Any, backend: str, tables: list[tuple[str | None, str]]) -> list[tuple[int, bool]]:
    counts = []
    for schema, name in tables:
        estimate = None
        if backend in _ESTIMATE_SQL:
            estimate = sync_conn.execute(
                sa.text(_ESTIMATE_SQL[backend]), {"schema": schema, "name": name}
            ).scalar()
        if estimate is not None and int(estimate) >= EXACT_BELOW:
            counts.append((int(estimate), True))
            continue
        # Identifiers come from reflection and are quoted by SQLAlchemy.
        exact = sync_conn.execute(sa.select(sa.func.count()).select_from(sa.table(name, schema=schema))).scalar()
        counts.append((int(exact or 0), False))
    return counts


async def row_counts(database: Database, tables: list[tuple[str | None, str]]) -> list[tuple[int, bool]]:
    """``(rows, estimated)`` for each ``(schema, name)``, in one connection."""
    if not tables:
        return []
    async with database.engine.connect() as conn:
        result = await conn.run_sync(_count, database.driver.name, tables)
        await conn.rollback()
    return result
