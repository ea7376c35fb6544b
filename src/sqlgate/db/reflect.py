"""What sqlgate learns from a database's catalog: server facts and tables.

Reflection runs at start-up and on demand, never per call on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from sqlgate.db.dialects.base import Dialect


@dataclass(frozen=True)
class ServerFacts:
    version: str
    default_schema: str | None
    # Table and schema names compare exactly (MySQL/MariaDB lower_case_table_names=0).
    exact_table_names: bool = False


async def server_facts(engine: AsyncEngine, driver: Dialect) -> ServerFacts:
    # sqlgate's own fixed statement, not agent input: it bypasses safety.check.
    async with engine.connect() as conn:
        row = (await conn.execute(text(driver.facts_sql))).one()
        await conn.rollback()
    exact = bool(row[2]) if len(row) > 2 else False
    return ServerFacts(version=driver.server_version(str(row[0])), default_schema=row[1], exact_table_names=exact)


async def table_names(engine: AsyncEngine, schema: str | None = None) -> list[str]:
    """User tables (and views) of ``schema`` (default: the connection's default schema)."""

    def names(sync_conn: Any) -> list[str]:
        inspector = inspect(sync_conn)
        found = list(inspector.get_table_names(schema=None))
        found += [v for v in inspector.get_view_names(schema=None) if v not in found]
        return sorted(found)

    async with engine.connect() as conn:
        result = await conn.run_sync(names)
        await conn.rollback()
    return result


async def column_names(
    engine: AsyncEngine, tables: list[tuple[str | None, str]]
) -> dict[tuple[str | None, str], tuple[str, ...]]:
    """The columns of each (schema, name), in table order; a table not found is left out.

    A name not found as written is tried lower-cased (an unquoted name in a policy)."""

    def columns(sync_conn: Any) -> dict[tuple[str | None, str], tuple[str, ...]]:
        inspector = inspect(sync_conn)
        found: dict[tuple[str | None, str], tuple[str, ...]] = {}
        for schema, name in tables:
            for candidate in dict.fromkeys((name, name.lower())):
                try:
                    cols = inspector.get_columns(candidate, schema=schema)
                except Exception:  # noqa: BLE001, S112 - missing table: try the next spelling
                    continue
                if cols:
                    found[(schema, name)] = tuple(str(c["name"]) for c in cols)
                    break
        return found

    async with engine.connect() as conn:
        result = await conn.run_sync(columns)
        await conn.rollback()
    return result
