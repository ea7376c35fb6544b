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


def error(result: Any) -> dict[str, Any]:
    assert result.is_error, result.content
    return dict(result.structured_content["error"])


async def test_postgres_binary_parameters_take_the_base64_form_results_use(postgres_backend: Backend) -> None:
    """A bytea parameter: "base64:AP8=" (what a result shows) was DB_ERROR "the database
    rejected the statement ... a bytes-like object is required" with the hint "fix the SQL",
    in execute_query and bulk_insert alike; now it is written as the bytes, and a value that
    is not base64 is INVALID_ARGUMENT naming the parameter."""
    table = unique("vb")
    await postgres_backend.aexecute(f"CREATE TABLE {table} (id INT PRIMARY KEY, b BYTEA)")
    async with postgres_backend.client(mode="read_write", allowed_tables=table) as client:
        put = await client.call_tool("execute_query", {
            "query": f"INSERT INTO {table} (id, b) VALUES (1, :b)", "parameters": {"b": "base64:AP8="}})
        bulk = await client.call_tool("bulk_insert", {"table": table, "records": [{"id": 2, "b": "base64:AAE="}]})
        read = await client.call_tool("execute_query", {"query": f"SELECT id, b FROM {table} ORDER BY id"})
        bad = [await client.call_tool("execute_query", {
            "query": f"INSERT INTO {table} (id, b) VALUES (3, :b)", "parameters": {"b": value}})
            for value in ("base64:!!", "plain text", 5)]
        bad_bulk = await client.call_tool("bulk_insert", {"table": table, "records": [
            {"id": 4, "b": "base64:AA=="}, {"id": 5, "b": "not base64"}]})
        after = await client.call_tool("execute_query", {"query": f"SELECT count(*) AS n FROM {table}"})
    assert not put.is_error and not bulk.is_error, (put.content, bulk.content)
    assert rows(read) == [[1, "base64:AP8="], [2, "base64:AAE="]]
    for result in bad:
        body = error(result)
        assert body["code"] == "INVALID_ARGUMENT" and ":b" in body["message"] and "base64" in body["hint"], body
    assert error(bad_bulk)["code"] == "INVALID_ARGUMENT", error(bad_bulk)
    assert rows(after) == [[2]]  # nothing of the failed bulk_insert was written


async def test_postgres_parameters_the_driver_refuses_are_invalid_argument(postgres_backend: Backend) -> None:
    """asyncpg's encoder refusing a value (2 for a boolean, an integer for a date) was
    DB_ERROR "the database rejected the statement" + "fix the SQL": the SQL was fine. A
    timestamp with an offset for a timestamp column was refused the same way ("can't
    subtract offset-naive and offset-aware datetimes"); PostgreSQL (and bulk_insert)
    ignore the offset there."""
    table = unique("vp")
    await postgres_backend.aexecute(f"CREATE TABLE {table} (id INT PRIMARY KEY, ok BOOLEAN, d DATE, ts TIMESTAMP)")
    async with postgres_backend.client(mode="read_write", allowed_tables=table) as client:
        refused = [await client.call_tool("execute_query", {
            "query": f"INSERT INTO {table} (id, {column}) VALUES (1, :v)", "parameters": {"v": value}})
            for column, value in (("ok", 2), ("d", 20240101))]
        offset = await client.call_tool("execute_query", {
            "query": f"INSERT INTO {table} (id, ts) VALUES (2, :v)", "parameters": {"v": "2024-01-01T10:00:00+05:00"}})
        read = await client.call_tool("execute_query", {"query": f"SELECT id, ts FROM {table}"})
    for result in refused:
        assert error(result)["code"] == "INVALID_ARGUMENT", error(result)
    assert not offset.is_error, offset.content
    assert rows(read) == [[2, "2024-01-01T10:00:00"]]


async def test_postgres_bulk_insert_booleans_into_other_columns(postgres_backend: Backend) -> None:
    """bulk_insert wrote JSON true through CSV as Python's "True": a text column got "True"
    (execute_query wrote the same), and integer, numeric and jsonb columns refused it
    (DB_ERROR "invalid input syntax") where execute_query took it."""
    table = unique("vt")
    await postgres_backend.aexecute(f"CREATE TABLE {table} (id INT PRIMARY KEY, t TEXT, i INT, n NUMERIC, j JSONB)")
    async with postgres_backend.client(mode="read_write", allowed_tables=table) as client:
        bulk = await client.call_tool("bulk_insert", {"table": table, "records": [
            {"id": 1, "t": True, "i": True, "n": False, "j": True}]})
        put = await client.call_tool("execute_query", {
            "query": f"INSERT INTO {table} (id, t) VALUES (2, :t)", "parameters": {"t": False}})
        read = await client.call_tool("execute_query", {"query": f"SELECT t, i, n, j FROM {table} ORDER BY id"})
    assert not bulk.is_error and not put.is_error, (bulk.structured_content, put.structured_content)
    assert rows(read) == [["true", 1, 0, True], ["false", None, None, None]]
