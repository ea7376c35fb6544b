"""query_optimization: the planner's view of one query, with concrete advice; and
workload_optimization: the smallest index set that serves several queries.

Two tools rather than one with a list argument: a single query's answer is about that
query (its plan, complexity, findings), a workload's is about a set of indexes and what
each query gains from it. One result schema each keeps both easy to read for a model."""

from __future__ import annotations

import time
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from sqlgate.advisor import (
    Advice,
    WorkloadAdvice,
    WorkloadItem,
    advise,
    advise_workload,
    named_placeholders,
    statement_to_plan,
)
from sqlgate.advisor import top_statements as advisor_top_statements
from sqlgate.db.guard import check_parameters
from sqlgate.errors import InvalidArgument, SqlgateError
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
  reason, from every predicate position: filters (equality, then a range, then ORDER BY /
  GROUP BY), join keys on both sides, one index per OR branch, expression indexes for
  lower()/upper() filters, LIKE 'prefix%' (PostgreSQL text_pattern_ops, SQLite NOCASE),
  INCLUDE columns for index-only scans. On PostgreSQL with hypopg they are verified as a
  set: the planner's combined cost (`index_set`), each index's `marginal_gain` given the
  others (kept only from 10 %), the `order` to build them, `works_with` for indexes that
  only pay together, and an estimated size. On SQLite the planner checks them with real
  indexes rolled back. MySQL/MariaDB suggestions are unverified. `already_indexed` lists
  what existing indexes already provide. For several queries at once use
  workload_optimization.
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


class WorkloadQuery(BaseModel):
    query: str = Field(description="One SQL statement; use :name placeholders for values")
    parameters: dict[str, Any] | None = Field(default=None, description="Values for the :name placeholders")


class WorkloadResult(WorkloadAdvice):
    duration_ms: float


MAX_WORKLOAD = 20

WORKLOAD_DESCRIPTION = """Find the few indexes that serve several queries best (tune a workload at once).

Pass the queries you run often (each exactly as for execute_query: same safety checks,
:name parameters). sqlgate gathers every index candidate of every query and, on
PostgreSQL with the hypopg extension, chooses the smallest set the planner proves:
each index must save at least 10 % of some query's cost given the others. Returns
`index_suggestions` (CREATE INDEX statements, never executed; `order` to build them,
`marginal_gain`, estimated size), `index_set` (total cost before/after), and per query
(`queries`, by position) its cost before and after and the suggested indexes it uses.
On SQLite the planner checks the candidates with real indexes rolled back; MySQL/MariaDB
get the candidates unverified. Up to 20 statements; nothing is ever created or executed
beyond EXPLAIN.

`top_statements: N` adds the database's N costliest statements (by total time) from
PostgreSQL's pg_stat_statements, where an administrator installed it: only statements
the policy allows (allowed tables) are used, planned as generic plans since their values
are unknown; each comes back with its text, calls and total time.
"""


async def workload_optimization(
    ctx: Context[Any],
    queries: Annotated[
        list[WorkloadQuery] | None, Field(description="The queries to tune together (up to 20)")
    ] = None,
    top_statements: Annotated[
        int | None,
        Field(description="Also take this database's N costliest statements by total time (1-20; PostgreSQL "
                          "with pg_stat_statements; only those on allowed tables)"),
    ] = None,
    database: Annotated[
        str | None, Field(description="Name of a configured database (default: the first)")
    ] = None,
) -> Annotated[CallToolResult, WorkloadResult]:
    started = time.perf_counter()
    queries = queries or []
    if top_statements is not None and not 1 <= top_statements <= MAX_WORKLOAD:
        raise InvalidArgument(f"top_statements must be 1 to {MAX_WORKLOAD}", "ask for the few costliest statements")
    if not (queries or top_statements) or len(queries) + (top_statements or 0) > MAX_WORKLOAD:
        raise InvalidArgument(
            f"workload_optimization takes 1 to {MAX_WORKLOAD} statements (queries plus top_statements), "
            f"not {len(queries) + (top_statements or 0)}",
            "pass the most frequent or most expensive queries",
        )
    db = await database_for(ctx, database)
    items = []
    for position, item in enumerate(queries):
        try:
            verdict = check_sql(db, item.query)
            params = check_parameters(verdict, require_dict(item.parameters, "parameters"))
            items.append(WorkloadItem(verdict, statement_to_plan(verdict, item.query, False), params))
        except SqlgateError as exc:
            exc.message = f"query {position}: {exc.message}"
            raise
    if top_statements:
        found = 0
        for text, calls, total_ms in await advisor_top_statements(db, top_statements * 10):
            # Statistics hold every statement the server ran: only what the policy would let an
            # agent run is advised on (allowed tables, reads or allowed writes); the rest is skipped.
            named = named_placeholders(text)
            try:
                verdict = check_sql(db, named)
                params = check_parameters(verdict, dict.fromkeys(verdict.parameters))
                statement = statement_to_plan(verdict, named, False)
            except SqlgateError:
                continue
            if not verdict.tables:
                continue  # no table: nothing to index (version(), set-up calls, ...)
            items.append(WorkloadItem(verdict, statement, params, generic=True, text=text, calls=calls,
                                      total_time_ms=round(total_ms, 3)))
            found += 1
            if found == top_statements:
                break
        if not items:
            raise InvalidArgument(
                "no statement in pg_stat_statements touches only allowed tables",
                "pass the queries themselves in `queries`",
            )
    advice = await advise_workload(db, items)
    return tool_result(
        WorkloadResult(**advice.model_dump(), duration_ms=round((time.perf_counter() - started) * 1000, 3))
    )


def register(server: Any, all_read_only: bool) -> None:
    server.add_tool(
        query_optimization,
        name="query_optimization",
        description=DESCRIPTION,
        annotations=ToolAnnotations(title="Explain and optimise a query", read_only_hint=True, open_world_hint=False),
        structured_output=True,
    )
    server.add_tool(
        workload_optimization,
        name="workload_optimization",
        description=WORKLOAD_DESCRIPTION,
        annotations=ToolAnnotations(title="Indexes for several queries", read_only_hint=True, open_world_hint=False),
        structured_output=True,
    )
