"""Streamed fetch under the budget (issue 12): rows are converted and sized as they
arrive; the fetch stops at max_rows or max_result_bytes, whichever comes first; any
single value is cut at max_value_bytes with a visible marker and counted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Backend, unique

WIDE = {
    "sqlite": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, body TEXT, data BLOB)",
    "postgres": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, body TEXT, data BYTEA)",
    "mysql": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, body LONGTEXT, data LONGBLOB)",
}
FILL = {
    "sqlite": "INSERT INTO {t} SELECT value, printf('%.*c', {n}, 'x'), zeroblob(1000) FROM "
              "(WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < {rows}) "
              "SELECT value FROM s)",
    "postgres": "INSERT INTO {t} SELECT g, repeat('x', {n}), decode(repeat('00', 1000), 'hex') "
                "FROM generate_series(1, {rows}) g",
    "mysql": "INSERT INTO {t} SELECT seq, REPEAT('x', {n}), REPEAT(X'00', 1000) FROM seq_1_to_{rows}",
}


@pytest.fixture(scope="module")
def wide(backend: Backend) -> str:
    table = unique("wide")
    backend.execute(WIDE[backend.name].format(t=table), FILL[backend.name].format(t=table, n=200_000, rows=40))
    return table


def body(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return dict(result.structured_content)


async def test_a_long_value_is_cut_with_a_marker_and_counted(backend: Backend, wide: str) -> None:
    async with backend.client(allowed_tables=[wide]) as client:
        out = body(await client.call_tool(
            "execute_query", {"query": f"SELECT id, body FROM {wide} WHERE id = 1"}))
    value = out["rows"][0][1]
    assert value.startswith("x" * 1000)
    assert "[sqlgate: cut at 65536 bytes; " in value
    assert len(value.encode()) < 65536 + 100
    assert out["truncated_values"] == 1
    assert out["truncated"] is False


async def test_the_byte_budget_stops_the_fetch_and_says_so(backend: Backend, wide: str) -> None:
    async with backend.client(allowed_tables=[wide]) as client:
        out = body(await client.call_tool("execute_query", {"query": f"SELECT id, body FROM {wide} ORDER BY id"}))
        # the connection (or its replacement) answers the next call
        again = body(await client.call_tool("execute_query", {"query": f"SELECT count(*) FROM {wide}"}))
    assert out["truncated"] is True
    assert 1 <= out["row_count"] <= 4  # 256 KiB of 64 KiB values
    assert len(json.dumps(out["rows"])) <= 256 * 1024
    assert out["truncated_values"] == out["row_count"]
    assert again["rows"] == [[40]]


async def test_bytes_are_cut_and_the_value_setting_applies(backend: Backend, wide: str) -> None:
    async with backend.client(allowed_tables=[wide], max_value_bytes=512) as client:
        out = body(await client.call_tool("execute_query", {"query": f"SELECT data FROM {wide} WHERE id = 2"}))
    value = out["rows"][0][0]
    assert value.startswith("base64:AAAA")
    assert "[sqlgate: cut at 512 bytes; " in value and len(value) < 700
    assert out["truncated_values"] == 1


async def test_max_rows_still_cuts_before_the_budget(backend: Backend, wide: str) -> None:
    async with backend.client(allowed_tables=[wide]) as client:
        out = body(await client.call_tool(
            "execute_query", {"query": f"SELECT id FROM {wide} ORDER BY id", "max_rows": 7}))
    assert out["rows"] == [[i] for i in range(1, 8)]
    assert out["truncated"] is True
    assert "truncated_values" not in out


async def test_a_first_row_wider_than_the_budget_is_cut_to_fit(backend: Backend, wide: str) -> None:
    columns = ", ".join(f"body AS b{i}" for i in range(8))
    async with backend.client(allowed_tables=[wide]) as client:
        out = body(await client.call_tool(
            "execute_query", {"query": f"SELECT {columns} FROM {wide} WHERE id = 3"}))
    assert out["row_count"] == 1
    assert len(json.dumps(out["rows"][0], ensure_ascii=False)) <= 256 * 1024
    assert out["truncated_values"] == 8
