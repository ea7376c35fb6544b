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

from sqlgate.advisor.models import Advice, WorkloadAdvice, WorkloadItem
from sqlgate.db.guard import check_parameters
from sqlgate.errors import InvalidArgument, PolicyViolation, SqlgateError
from sqlgate.tools import checking
from sqlgate.tools.base import check_sql, database_for, record, require_dict, runtime, tool_result


class OptimizationResult(Advice):
    statement_kind: str
    duration_ms: float


DESCRIPTION = """Explain why a query is slow: the planner's plan summarised (`analyze: true` runs it,
rolled back), complexity, anti-pattern findings with rewrites, and CREATE INDEX suggestions
(never executed; verified with hypopg on PostgreSQL, on an in-memory copy of the schema on
SQLite). Same safety checks and parameters as execute_query; tables only, not views.
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
    from sqlgate.advisor.advice import advise, statement_to_plan  # the planner machinery loads on first use

    started = time.perf_counter()
    params = require_dict(parameters, "parameters")
    db = await database_for(ctx, database)
    await checking.prime(db, (query,))  # a long text is checked off the event loop
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

WORKLOAD_DESCRIPTION = """Find the fewest indexes serving several queries (up to 20, each as for execute_query;
`top_statements: N` adds PostgreSQL's costliest from pg_stat_statements). Returns CREATE
INDEX suggestions (never executed) with build order and gains, and each query's cost
before and after.
"""


async def workload_optimization(
    ctx: Context[Any],
    queries: Annotated[
        list[WorkloadQuery] | None, Field(description="The queries to tune together (up to 20)")
    ] = None,
    top_statements: Annotated[
        int | None,
        Field(description="Add the N (1-20) costliest allowed statements from pg_stat_statements (PostgreSQL)"),
    ] = None,
    database: Annotated[
        str | None, Field(description="Name of a configured database (default: the first)")
    ] = None,
) -> Annotated[CallToolResult, WorkloadResult]:
    from sqlgate.advisor.advice import advise_workload, statement_to_plan
    from sqlgate.advisor.advice import top_statements as statistics_top
    from sqlgate.advisor.capture import named_placeholders

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
    if top_statements and not runtime(ctx).settings.workload_statistics:
        # pg_stat_statements holds every client's statements (normalised, comments kept):
        # another session's SQL, which an agent never reads unless the operator says so.
        raise PolicyViolation(
            "top_statements reads other clients' statements from pg_stat_statements, which this server "
            "does not allow",
            "pass the queries themselves in `queries`; an operator can allow it with "
            "SQLGATE_WORKLOAD_STATISTICS=true",
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
        for text, calls, total_ms in await statistics_top(db, top_statements * 10):
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
