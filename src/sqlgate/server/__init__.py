"""Building and running the MCP server."""
