"""query_optimization: the planner's view of one query, with concrete advice."""

from __future__ import annotations

import time
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from sqlgate.advisor import Advice, advise, statement_to_plan
from sqlgate.db.guard import check_parameters
from sqlgate.tools.base import check_sql, database_for, record, require_dict, tool_result


class OptimizationResult(Advice):
    statement_kind: str
    duration_ms: float


DESCRIPTION = """Explain why a SQL query is slow and what to change, with evidence from the database's planner.

Pass the query exactly as you would to execute_query (same safety checks, same :name
parameters). Returns:
- `plan`: the planner's plan summarised (total cost, estimated rows, scan type per table,
  join methods, sorts and temporary/disk use) plus the raw plan. With `analyze=true` the
  query is really executed (inside a transaction that is rolled back, under the statement
  timeout) and actual rows and time are added; this is refused for anything but reads.
- `complexity`: simple | moderate | complex with the counted features.
- `findings`: anti-patterns with severity and a rewrite hint (full scans of large tables,
  SELECT *, leading-wildcard LIKE, functions on filtered columns, implicit cross joins,
  OR across columns, NOT IN over a nullable subquery, missing LIMIT, ORDER BY + LIMIT
  without an index, correlated subqueries, COUNT(*) over huge tables, DISTINCT over joins).
- `index_suggestions`: CREATE INDEX statements (never executed by this tool) with the
  reason; on PostgreSQL with hypopg and on SQLite they are checked with the planner
  (`verified`, cost before/after) and dropped when they do not help. `already_indexed`
  lists what existing indexes already provide.
- `dialect_notes`: MySQL/MariaDB (filesort, temporary tables, key_len) and TiDB advice.
"""


async def query_optimization(
    query: Annotated[str, Field(description="One SQL statement; use :name placeholders for values")],
    ctx: Context[Any],
    parameters: Annotated[
        dict[str, Any] | None, Field(description="Values for the :name placeholders")
    ] = None,
    analyze: Annotated[
        bool, Field(description="Execute the query (reads only, rolled back) to report actual rows and time")
    ] = False,
    suggest_indexes: Annotated[bool, Field(description="Suggest (and where possible verify) indexes")] = True,
    database: Annotated[
        str | None, Field(description="Name of a configured database (default: the first)")
    ] = None,
) -> Annotated[CallToolResult, OptimizationResult]:
    started = time.perf_counter()
    params = require_dict(parameters, "parameters")
    db = await database_for(ctx, database)
    verdict = check_sql(db, query)
    params = check_parameters(verdict, params)
    statement = statement_to_plan(verdict, query, analyze)
    advice = await advise(db, verdict, statement, params, analyze=analyze, suggest_indexes=suggest_indexes)
    if advice.plan.actual_rows is not None:
        record(rows=int(advice.plan.actual_rows))
    return tool_result(
        OptimizationResult(
            **advice.model_dump(),
            statement_kind=verdict.statement_kind,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
    )


def register(server: Any, all_read_only: bool) -> None:
    server.add_tool(
        query_optimization,
        name="query_optimization",
        description=DESCRIPTION,
        annotations=ToolAnnotations(title="Explain and optimise a query", read_only_hint=True, open_world_hint=False),
        structured_output=True,
    )
