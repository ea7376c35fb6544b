"""bulk_insert through a real MCP client on sqlite, postgres and mysql."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Backend, unique

pytestmark = pytest.mark.anyio

DDL = {
    "sqlite": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, code VARCHAR(20) UNIQUE, name VARCHAR(100) NOT NULL, "
    "score NUMERIC(10,2), born DATE, note VARCHAR(50) DEFAULT 'none')",
    "postgres": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, code VARCHAR(20) UNIQUE, name VARCHAR(100) NOT NULL, "
    "score NUMERIC(10,2), born DATE, note VARCHAR(50) DEFAULT 'none')",
    "mysql": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, code VARCHAR(20) UNIQUE, name VARCHAR(100) NOT NULL, "
    "score DECIMAL(10,2), born DATE, note VARCHAR(50) DEFAULT 'none')",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def make_table(backend: Backend, prefix: str = "bi") -> str:
    table = unique(prefix)
    await backend.aexecute(DDL[backend.name].format(t=table))
    return table


def people(start: int, count: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"id": i, "code": f"c{i}", "name": f"person {i}", "score": f"{i}.25", "born": "1990-01-02", **extra}
        for i in range(start, start + count)
    ]


async def rows(backend: Backend, table: str, order: str = "id") -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await backend.aexecute(f"SELECT id, name, note FROM {table} ORDER BY {order}")]


async def count(backend: Backend, table: str) -> int:
    return int((await backend.aexecute(f"SELECT count(*) FROM {table}"))[0][0])


def error_code(result: Any) -> str:
    assert result.is_error, result
    return str(result.structured_content["error"]["code"])


async def test_inserts_rows_with_defaults_for_missing_keys(backend: Backend) -> None:
    table = await make_table(backend)
    records = people(1, 5)
    records[2] = {"id": 3, "name": "only name"}  # different key set: the rest default/NULL
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await client.call_tool("bulk_insert", {"table": table, "records": records, "batch_size": 2})
    assert not result.is_error, result.content
    data = result.structured_content
    assert (data["inserted"], data["updated"], data["skipped"], data["batches"]) == (5, 0, 0, 3)
    assert data["rows_per_second"] > 0
    found = await rows(backend, table)
    assert found[2] == (3, "only name", "none")
    assert [r[0] for r in found] == [1, 2, 3, 4, 5]
