"""The MCP tools, one module each. ``TOOL_MODULES`` is the registration order."""

TOOL_MODULES = (
    "sqlgate.tools.execute_query",
    "sqlgate.tools.schema",
    "sqlgate.tools.health",
    "sqlgate.tools.bulk_insert",
    "sqlgate.tools.transactions",
    "sqlgate.tools.optimize",
)
