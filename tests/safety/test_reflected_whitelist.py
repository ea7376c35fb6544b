"""The default whitelist (tables reflected at start-up) through a real server."""

from __future__ import annotations

from tests.conftest import Backend, unique


async def test_reflected_mixed_case_postgres_table_is_queryable(postgres_backend: Backend) -> None:
    table = "Sf" + unique("Events")
    await postgres_backend.aexecute(f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY)', f'INSERT INTO "{table}" VALUES (5)')
    async with postgres_backend.client() as client:  # no allowed_tables: reflected
        result = await client.call_tool("execute_query", {"query": f'SELECT id FROM "{table}"'})
        assert not result.is_error, result.structured_content
        assert result.structured_content["rows"] == [[5]]
        catalog = await client.call_tool("execute_query", {"query": "SELECT relname FROM pg_class"})
        assert catalog.structured_content["error"]["code"] == "TABLE_NOT_ALLOWED"
