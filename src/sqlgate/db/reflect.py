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


async def server_facts(engine: AsyncEngine, driver: Dialect) -> ServerFacts:
    # sqlgate's own fixed statement, not agent input: it bypasses safety.check.
    async with engine.connect() as conn:
        row = (await conn.execute(text(driver.facts_sql))).one()
        await conn.rollback()
    return ServerFacts(version=driver.server_version(str(row[0])), default_schema=row[1])


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
