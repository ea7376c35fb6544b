"""Run the database's planner on a validated statement, inside a rolled-back transaction.

The statement is the verdict's checked syntax tree, rendered with the driver's parameter
markers (values bound by the driver, as for execute_query); the dialect only prefixes its
own fixed ``EXPLAIN`` words (its ``explain`` hook). Everything here runs on the driver
connection of a ``GuardedTransaction`` (read-only, under the statement timeout) that the
caller rolls back.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from sqlgate.advisor import summarize
from sqlgate.advisor.models import PlanSummary
from sqlgate.db.schema import TableInfo


async def capture(dialect: Any, conn: Any, version: str, statement: exp.Expr, params: dict[str, Any],
                  analyze: bool, timeout_ms: int) -> PlanSummary:
    """The summarised plan of ``statement`` (executed too when ``analyze``)."""
    raw = await dialect.explain(conn, statement, params, analyze=analyze, timeout_ms=timeout_ms,
                                server_version=version)
    return summarize.read(raw)


async def row_estimates(dialect: Any, conn: Any, infos: list[TableInfo]) -> dict[str, float]:
    """Approximate row counts from the catalog (SQLite: the largest rowid), by table name."""
    found: dict[str, float] = {}
    for info in infos:
        if info.is_view:
            continue
        value = await dialect.table_rows(conn, info.schema, info.name)
        if value is not None:
            found[info.name.lower()] = float(value)
    return found
