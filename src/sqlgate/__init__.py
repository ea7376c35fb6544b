"""sqlgate: an MCP server that gives AI agents safe, fast access to SQL databases."""

__version__ = "0.1.0"
