"""The MCP tools, one module each. ``TOOL_MODULES`` is the registration order."""

TOOL_MODULES = (
    "sqlgate.tools.execute_query",
    "sqlgate.tools.schema",
    "sqlgate.tools.health",
    "sqlgate.tools.bulk_insert",
    "sqlgate.tools.transactions",
    "sqlgate.tools.optimize",
)

# Listed only when some configured database allows writes (still callable otherwise:
# a call then gets the refusal with its hint). Keeps tools/list small for read-only use.
WRITE_TOOLS = ("bulk_insert", "transaction_manager")
