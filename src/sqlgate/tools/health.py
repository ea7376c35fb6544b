"""health_check: is every database reachable and sound, and is the audit log writing?"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from sqlgate import health
from sqlgate.health import HealthReport
from sqlgate.tools.base import record, runtime, tool_result

DESCRIPTION = """Check sqlgate and its databases: `status` (healthy, degraded, unhealthy) with `reasons`,
latency, pool, tables, migrations. Use it when calls fail with DB_UNAVAILABLE, TIMEOUT or
POOL_EXHAUSTED.
"""


async def health_check(
    ctx: Context[Any],
    include_stats: Annotated[
        bool, Field(description="Include pool statistics and table row counts")
    ] = True,
    test_operations: Annotated[
        bool, Field(description="Also run a rolled-back write round trip on a temporary table")
    ] = False,
    database: Annotated[
        str | None, Field(description="Name of one configured database (default: all)")
    ] = None,
) -> Annotated[CallToolResult, HealthReport]:
    rt = runtime(ctx)
    if database:
        rt.databases.get(database)  # unknown name: INVALID_ARGUMENT naming the configured ones
        record(database=database)
    audit = health.audit_health(rt.audit, rt.settings.audit_enabled)
    report = await health.check(
        rt.databases,
        audit,
        timeout_s=rt.settings.health_timeout_s,
        include_stats=include_stats,
        test_operations=test_operations,
        only=database,
        check_privileges=rt.settings.check_privileges,
    )
    return tool_result(report)


def register(server: Any, all_read_only: bool) -> None:
    server.add_tool(
        health_check,
        name="health_check",
        description=DESCRIPTION,
        annotations=ToolAnnotations(
            title="Check database health", read_only_hint=True, idempotent_hint=True, open_world_hint=False
        ),
        structured_output=True,
    )
