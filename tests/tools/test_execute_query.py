"""execute_query through a real MCP client, the same matrix on sqlite, postgres and mysql."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Backend

pytestmark = pytest.mark.anyio

PEOPLE_DDL = {
    "sqlite": "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score NUMERIC(10,2), born DATE)",
    "postgres": "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score NUMERIC(10,2), born DATE)",
    "mysql": "CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, score DECIMAL(10,2), born DATE)",
}
SECRET_DDL = "CREATE TABLE secrets (id INTEGER PRIMARY KEY, value VARCHAR(100))"


@pytest.fixture(scope="session")
def people(backend: Backend) -> Backend:
    """``people`` (30 rows) and ``secrets`` tables; only ``people`` is whitelisted in tests."""
    if not backend.extra.get("people"):
        backend.execute(
            "DROP TABLE IF EXISTS people",
            "DROP TABLE IF EXISTS secrets",
            PEOPLE_DDL[backend.name],
            SECRET_DDL,
            "INSERT INTO secrets VALUES (1, 'hunter2')",
        )
        values = ", ".join(f"({i}, 'person {i}', {i}.50, '1990-01-{i:02d}')" for i in range(1, 31))
        backend.execute(f"INSERT INTO people (id, name, score, born) VALUES {values}")
        backend.extra["people"] = True
    return backend


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def call(client: Any, **arguments: Any) -> Any:
    return await client.call_tool("execute_query", arguments)


def error_code(result: Any) -> str:
    assert result.is_error, result
    return result.structured_content["error"]["code"]


async def test_select_with_parameters(people: Backend) -> None:
    async with people.client(allowed_tables="people") as client:
        result = await call(
            client, query="SELECT id, name FROM people WHERE id = :id OR name = :name ORDER BY id",
            parameters={"id": 2, "name": "person 5"},
        )
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["columns"] == ["id", "name"]
    assert data["rows"] == [[2, "person 2"], [5, "person 5"]]
    assert data["row_count"] == 2 and data["truncated"] is False
    assert data["statement_kind"] == "select"


async def test_parameters_are_bound_not_pasted(people: Backend) -> None:
    async with people.client(allowed_tables="people") as client:
        result = await call(
            client, query="SELECT count(*) AS n FROM people WHERE name = :name",
            parameters={"name": "x' OR '1'='1"}, fetch_mode="scalar",
        )
    assert result.structured_content["value"] == 0


@pytest.mark.parametrize(
    ("fetch_mode", "rows", "value"),
    [("all", 3, None), ("one", 1, None), ("scalar", 1, 1), ("none", 0, None)],
)
async def test_fetch_modes(people: Backend, fetch_mode: str, rows: int, value: Any) -> None:
    async with people.client(allowed_tables="people") as client:
        result = await call(
            client, query="SELECT id FROM people WHERE id <= 3 ORDER BY id", fetch_mode=fetch_mode
        )
    data = result.structured_content
    assert data["row_count"] == rows
    assert data.get("value") == value


async def test_truncation_at_max_rows(people: Backend) -> None:
    async with people.client(allowed_tables="people", max_rows=10) as client:
        capped = await call(client, query="SELECT id FROM people ORDER BY id")
        asked = await call(client, query="SELECT id FROM people ORDER BY id", max_rows=4)
        above_policy = await call(client, query="SELECT id FROM people ORDER BY id", max_rows=500)
        explicit_limit = await call(client, query="SELECT id FROM people ORDER BY id LIMIT 25")
    assert capped.structured_content["row_count"] == 10
    assert capped.structured_content["truncated"] is True
    assert "LIMIT" in capped.structured_content["hint"]
    assert asked.structured_content["rows"] == [[1], [2], [3], [4]]
    assert asked.structured_content["truncated"] is True
    assert above_policy.structured_content["row_count"] == 10
    assert explicit_limit.structured_content["row_count"] == 10
    assert explicit_limit.structured_content["truncated"] is True


async def test_truncation_at_result_bytes(people: Backend) -> None:
    async with people.client(allowed_tables="people", max_result_bytes=1024) as client:
        result = await call(
            client, query="SELECT id, name, name AS n2, name AS n3, name AS n4, name AS n5 FROM people"
        )
    data = result.structured_content
    assert data["truncated"] is True
    assert 0 < data["row_count"] < 30
    assert "size budget" in data["hint"]


async def test_no_truncation_when_everything_fits(people: Backend) -> None:
    async with people.client(allowed_tables="people", max_rows=30) as client:
        result = await call(client, query="SELECT id FROM people")
    assert result.structured_content["row_count"] == 30
    assert result.structured_content["truncated"] is False


async def test_decimal_and_date_conversion(people: Backend) -> None:
    async with people.client(allowed_tables="people") as client:
        result = await call(client, query="SELECT score, born FROM people WHERE id = 7")
    score, born = result.structured_content["rows"][0]
    # SQLite has no decimal type: NUMERIC affinity stores 7.5 as a REAL.
    assert score == 7.5
    assert born == "1990-01-07"


async def test_denied_write_in_read_only(people: Backend) -> None:
    async with people.client(allowed_tables="people") as client:
        result = await call(client, query="DELETE FROM people WHERE id = 1")
        still = await call(client, query="SELECT count(*) FROM people", fetch_mode="scalar")
    assert error_code(result) == "WRITE_NOT_ALLOWED"
    assert still.structured_content["value"] == 30


async def test_write_in_read_write_mode(people: Backend) -> None:
    async with people.client(allowed_tables="people", mode="read_write") as client:
        inserted = await call(
            client, query="INSERT INTO people (id, name) VALUES (:id, :name)",
            parameters={"id": 1000, "name": "temp"},
        )
        deleted = await call(client, query="DELETE FROM people WHERE id = :id", parameters={"id": 1000})
    assert not inserted.is_error, inserted.content
    assert inserted.structured_content["rows_affected"] == 1
    assert inserted.structured_content["statement_kind"] == "insert"
    assert deleted.structured_content["rows_affected"] == 1


async def test_denied_table(people: Backend) -> None:
    async with people.client(allowed_tables="people") as client:
        result = await call(client, query="SELECT value FROM secrets")
    assert error_code(result) == "TABLE_NOT_ALLOWED"
    assert "people" in result.structured_content["error"]["hint"]


async def test_default_whitelist_is_reflected(people: Backend) -> None:
    async with people.client() as client:
        result = await call(client, query="SELECT value FROM secrets")
    assert result.structured_content["rows"] == [["hunter2"]]


async def test_unparseable_sql(people: Backend) -> None:
    async with people.client(allowed_tables="people") as client:
        result = await call(client, query="SELEC id FRM people")
    assert error_code(result) == "PARSE_ERROR"


async def test_multi_statement_denied(people: Backend) -> None:
    async with people.client(allowed_tables="people") as client:
        result = await call(client, query="SELECT 1; DROP TABLE people")
    assert error_code(result) == "MULTI_STATEMENT"


# 30^6 = 729 million joined rows: many seconds on every database.
SLOW = "SELECT count(*) FROM people a, people b, people c, people d, people e, people f"


async def test_timeout_cancels_and_pool_survives(people: Backend) -> None:
    async with people.client(allowed_tables="people", pool_size=1, max_overflow=0) as client:
        started = time.monotonic()
        result = await call(client, query=SLOW, timeout_seconds=1)
        elapsed = time.monotonic() - started
        after = await call(client, query="SELECT count(*) FROM people", fetch_mode="scalar")
    assert error_code(result) == "TIMEOUT"
    assert elapsed < 6, f"timeout took {elapsed:.1f}s"
    assert after.structured_content["value"] == 30


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"query": 42}, "query"),
        ({"query": "SELECT 1", "max_rows": -1}, "max_rows"),
        ({"query": "SELECT 1", "fetch_mode": "many"}, "fetch_mode"),
        ({"query": "SELECT 1", "timeout_seconds": 0}, "timeout_seconds"),
        ({"query": "SELECT 1", "parameters": [1, 2]}, "parameters"),
    ],
)
async def test_bad_arguments(sqlite_backend: Backend, arguments: dict[str, Any], field: str) -> None:
    async with sqlite_backend.client() as client:
        result = await client.call_tool("execute_query", arguments)
    assert error_code(result) == "INVALID_ARGUMENT"
    assert field in result.structured_content["error"]["message"]


async def test_unknown_database(sqlite_backend: Backend) -> None:
    async with sqlite_backend.client() as client:
        result = await call(client, query="SELECT 1", database="nope")
    assert error_code(result) == "INVALID_ARGUMENT"
    assert "main" in result.structured_content["error"]["hint"]


async def test_missing_and_extra_parameters(people: Backend) -> None:
    async with people.client(allowed_tables="people") as client:
        missing = await call(client, query="SELECT * FROM people WHERE id = :id")
        extra = await call(client, query="SELECT 1", parameters={"x": 1})
    assert error_code(missing) == "INVALID_ARGUMENT"
    assert "id" in missing.structured_content["error"]["message"]
    assert error_code(extra) == "INVALID_ARGUMENT"


async def test_database_error_is_reported_without_secrets(people: Backend) -> None:
    async with people.client(allowed_tables="people") as client:
        result = await call(client, query="SELECT no_such_column FROM people")
    assert error_code(result) == "DB_ERROR"
    assert "no_such_column" in result.structured_content["error"]["message"]
