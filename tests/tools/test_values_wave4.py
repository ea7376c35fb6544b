"""Value paths fuzzed on the real databases (wave 4): results coming back and parameter
values going in, through a real MCP client. Each test names the input that went wrong."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Backend, unique

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def rows(result: Any) -> list[list[Any]]:
    assert not result.is_error, result.content
    return list(result.structured_content["rows"])


async def test_postgres_intervals_are_exact_iso_durations(postgres_backend: Backend) -> None:
    """'1 microsecond' came back as "PT1e-06S" (not ISO 8601) and '-1 day +1 microsecond'
    as "-PT23H59M60S" (the fraction rounded up into a 60th second)."""
    async with postgres_backend.client(allowed_tables="") as client:
        result = await client.call_tool("execute_query", {"query": (
            "SELECT '1 microsecond'::interval AS a, '-1 day +1 microsecond'::interval AS b, "
            "'1 day 02:03:04.5'::interval AS c, '0'::interval AS d")})
    assert rows(result) == [["PT0.000001S", "-PT23H59M59.999999S", "P1DT2H3M4.5S", "PT0S"]]


async def test_mysql_time_extremes_are_exact_durations(mysql_backend: Backend) -> None:
    """TIME '838:59:59.999999' came back as "P34DT22H59M60S", '00:00:00.000001' as "PT1e-06S"."""
    async with mysql_backend.client(allowed_tables="") as client:
        result = await client.call_tool("execute_query", {"query": (
            "SELECT CAST('838:59:59.999999' AS TIME(6)) AS a, CAST('-838:59:59.999999' AS TIME(6)) AS b, "
            "CAST('00:00:00.000001' AS TIME(6)) AS c")})
    assert rows(result) == [["P34DT22H59M59.999999S", "-P34DT22H59M59.999999S", "PT0.000001S"]]


async def test_postgres_bits_and_ranges_in_their_text_form(postgres_backend: Backend) -> None:
    """BIT/VARBIT came back as "<BitString 1011>" and ranges as "<Range [1, 10)>" (asyncpg's
    repr), not as PostgreSQL writes them."""
    table = unique("vr")
    await postgres_backend.aexecute(
        f"CREATE TABLE {table} (id INT PRIMARY KEY, bits BIT(4), vbits VARBIT, r INT4RANGE, d DATERANGE)",
        f"INSERT INTO {table} VALUES (1, B'1011', B'10', '[1,10)', '(,2024-01-31]'), (2, NULL, B'', 'empty', NULL)",
    )
    async with postgres_backend.client(allowed_tables=table) as client:
        result = await client.call_tool("execute_query", {
            "query": f"SELECT bits, vbits, r, d FROM {table} ORDER BY id"})
    assert rows(result) == [["1011", "10", "[1,10)", "(,2024-02-01)"], [None, "", "empty", None]]
