"""tools/list stays small: concise descriptions, compact input schemas, output schemas one
level deep (no per-row item schemas), write tools listed only when a database allows writes."""

from __future__ import annotations

import json

from mcp.types import ListToolsResult

from tests.conftest import Backend

WRITE_TOOLS = {"bulk_insert", "transaction_manager"}


def nested_schema_keys(schema: object) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("items", "$defs", "$ref", "anyOf", "title", "description"):
                found.add(key)
            found |= nested_schema_keys(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= nested_schema_keys(value)
    return found


async def test_read_only_list_is_small_and_shallow(sqlite_backend: Backend) -> None:
    async with sqlite_backend.client(mode="read_only") as client:
        listed = await client.list_tools()
        call = await client.call_tool("bulk_insert", {"table": "nowhere", "records": [{"a": 1}]})
        rows = await client.call_tool("execute_query", {"query": "SELECT 1 AS a UNION ALL SELECT 2"})
    names = {t.name for t in listed.tools}
    assert "execute_query" in names and not names & WRITE_TOOLS
    assert call.is_error  # hidden, not gone: the call is refused with a code and a hint
    assert rows.structured_content["rows"] == [[1], [2]]
    size = len(ListToolsResult(tools=listed.tools).model_dump_json(by_alias=True, exclude_none=True))
    assert size < 7_000, size  # ~1,500 o200k tokens
    for tool in listed.tools:
        assert len(tool.description or "") < 450, tool.name
        assert not nested_schema_keys(tool.output_schema), (tool.name, tool.output_schema)
        assert "title" not in json.dumps(tool.input_schema["properties"].get("database", {}))


async def test_write_tools_listed_when_a_database_allows_writes(sqlite_backend: Backend) -> None:
    async with sqlite_backend.client(mode="read_write") as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert names >= WRITE_TOOLS
