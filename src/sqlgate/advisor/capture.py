"""Run the database's planner on a validated statement, inside a rolled-back transaction.

The statement is the verdict's checked syntax tree, rendered with the driver's parameter
markers (values bound by the driver, as for execute_query); the dialect only prefixes its
own fixed ``EXPLAIN`` words (its ``explain`` hook). Everything here runs on the driver
connection of a ``GuardedTransaction`` (read-only, under the statement timeout) that the
caller rolls back.
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp

from sqlgate.advisor import summarize
from sqlgate.advisor.models import PlanSummary
from sqlgate.db.schema import TableInfo


async def capture(dialect: Any, conn: Any, version: str, statement: exp.Expr, params: dict[str, Any],
                  analyze: bool, timeout_ms: int, generic: bool = False) -> PlanSummary:
    """The summarised plan of ``statement`` (executed too when ``analyze``; a generic plan
    when ``generic``: the values are unknown)."""
    raw = await dialect.explain(conn, statement, params, analyze=analyze, timeout_ms=timeout_ms,
                                server_version=version, generic=generic)
    return summarize.read(raw)


_POSITIONAL = re.compile(r"(?<![\w$])\$(\d+)(?!\w)")


def named_placeholders(text: str) -> str:
    """pg_stat_statements' ``$1`` placeholders as sqlgate's ``:p1`` (outside quotes)."""
    parts = re.split(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")", text)
    return "".join(part if i % 2 else _POSITIONAL.sub(r":p\1", part) for i, part in enumerate(parts))


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
