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


async def seed(backend: Backend, table: str) -> None:
    await backend.aexecute(
        f"INSERT INTO {table} (id, code, name, score, born) VALUES "
        "(1, 'c1', 'person 1', 1.25, '1990-01-02'), (2, 'c2', 'person 2', 2.25, '1990-01-02'), "
        "(3, 'c3', 'person 3', 3.25, '1990-01-02')"
    )


# Existing rows 1-3; the call sends 2 (changed name), 3 (same values), 4 and 5 (new).
CONFLICTING = [{**p, "name": "renamed"} if p["id"] == 2 else p for p in people(2, 4)]


@pytest.mark.parametrize(
    ("on_conflict", "counts", "names"),
    [
        ("ignore", (2, 0, 2), ["person 1", "person 2", "person 3", "person 4", "person 5"]),
        ("update", (2, 2, 0), ["person 1", "renamed", "person 3", "person 4", "person 5"]),
    ],
)
async def test_on_conflict_modes_count_rows(
    backend: Backend, on_conflict: str, counts: tuple[int, int, int], names: list[str]
) -> None:
    table = await make_table(backend)
    await seed(backend, table)
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await client.call_tool(
            "bulk_insert", {"table": table, "records": CONFLICTING, "on_conflict": on_conflict}
        )
    assert not result.is_error, result.content
    data = result.structured_content
    assert (data["inserted"], data["updated"], data["skipped"]) == counts
    assert data["conflict_columns"] == ["id"]
    assert [r[1] for r in await rows(backend, table)] == names


async def test_on_conflict_error_fails_and_writes_nothing(backend: Backend) -> None:
    table = await make_table(backend)
    await seed(backend, table)
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await client.call_tool("bulk_insert", {"table": table, "records": CONFLICTING})
    assert error_code(result) == "CONSTRAINT_VIOLATION"
    assert result.structured_content["error"]["committed"] is False
    assert await count(backend, table) == 3


async def test_update_on_a_unique_constraint_with_chosen_columns(backend: Backend) -> None:
    table = await make_table(backend)
    await seed(backend, table)
    records = [{"id": 2, "code": "c2", "name": "by code", "note": "kept?"}, {"id": 9, "code": "c9", "name": "new"}]
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await client.call_tool(
            "bulk_insert",
            {"table": table, "records": records, "on_conflict": "update",
             "conflict_columns": ["code"], "update_columns": ["name"]},
        )
    assert not result.is_error, result.content
    data = result.structured_content
    assert (data["inserted"], data["updated"], data["skipped"]) == (1, 1, 0)
    found = await rows(backend, table)
    assert found[1] == (2, "by code", "none")  # note was not in update_columns
    assert found[-1] == (9, "new", "none")


async def test_update_needs_a_key_in_every_record(backend: Backend) -> None:
    table = await make_table(backend)
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        missing = await client.call_tool(
            "bulk_insert", {"table": table, "records": [{"name": "x"}], "on_conflict": "update"}
        )
        not_a_key = await client.call_tool(
            "bulk_insert",
            {"table": table, "records": people(1, 1), "on_conflict": "ignore", "conflict_columns": ["name"]},
        )
    assert error_code(missing) == "INVALID_ARGUMENT"
    assert error_code(not_a_key) == "INVALID_ARGUMENT"
    assert "(id)" in not_a_key.structured_content["error"]["hint"]


async def test_values_are_converted_to_column_types(backend: Backend) -> None:
    table = await make_table(backend)
    records = [
        {"id": 1, "name": "a", "score": "12.50", "born": "2024-02-29"},
        {"id": 2, "name": "b", "score": 3.5, "born": None},
        {"id": 3, "name": "c", "score": 7},
    ]
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await client.call_tool("bulk_insert", {"table": table, "records": records})
        back = await client.call_tool(
            "execute_query", {"query": f"SELECT id, score, born FROM {table} ORDER BY id"}
        )
    assert not result.is_error, result.content
    assert back.structured_content["rows"] == [[1, 12.5, "2024-02-29"], [2, 3.5, None], [3, 7, None]]


async def test_refused_before_anything_is_written(backend: Backend) -> None:
    table = await make_table(backend)
    other = await make_table(backend, "bi_other")
    async with backend.client(
        mode="read_write", allowed_tables=table, denied_columns=f"{table}.note",
        bulk_max_records=5, bulk_max_payload_bytes=2048,
    ) as client:
        unknown = await client.call_tool(
            "bulk_insert", {"table": table, "records": [*people(1, 2), {"id": 3, "nmae": "typo"}]}
        )
        denied = await client.call_tool("bulk_insert", {"table": table, "records": people(1, 2, note="x")})
        not_allowed = await client.call_tool("bulk_insert", {"table": other, "records": people(1, 1)})
        too_many = await client.call_tool("bulk_insert", {"table": table, "records": people(1, 6)})
        too_big = await client.call_tool(
            "bulk_insert", {"table": table, "records": [{"id": 1, "name": "x" * 3000}]}
        )
        empty = await client.call_tool("bulk_insert", {"table": table, "records": []})
    assert error_code(unknown) == "INVALID_ARGUMENT"
    message = unknown.structured_content["error"]
    assert "nmae" in message["message"] and "name" in message["hint"] and "score" in message["hint"]
    assert error_code(denied) == "COLUMN_NOT_ALLOWED"
    assert error_code(not_allowed) == "TABLE_NOT_ALLOWED"
    assert error_code(too_many) == "INVALID_ARGUMENT" and "5" in too_many.structured_content["error"]["message"]
    assert error_code(too_big) == "INVALID_ARGUMENT"
    assert error_code(empty) == "INVALID_ARGUMENT"
    assert await count(backend, table) == 0


async def test_read_only_database_refuses(backend: Backend) -> None:
    table = await make_table(backend)
    async with backend.client(mode="read_only", allowed_tables=table) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("bulk_insert", {"table": table, "records": people(1, 2)})
    assert "bulk_insert" not in tools  # not listed on a read-only server, but a call explains
    assert error_code(result) == "WRITE_NOT_ALLOWED"
    assert await count(backend, table) == 0


def with_bad_batch_five() -> list[dict[str, Any]]:
    records = people(0, 100)
    records[45] = {**records[45], "id": 0, "code": "dup"}  # batch 5 repeats batch 1's key
    return records


async def test_atomic_failure_in_batch_five_leaves_nothing(backend: Backend) -> None:
    table = await make_table(backend)
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await client.call_tool(
            "bulk_insert", {"table": table, "records": with_bad_batch_five(), "batch_size": 10}
        )
    assert error_code(result) == "CONSTRAINT_VIOLATION"
    error = result.structured_content["error"]
    assert (error["failed_batch"], error["first_record"], error["committed"]) == (5, 40, False)
    assert await count(backend, table) == 0  # checked from a separate connection


async def test_non_atomic_failure_keeps_batches_one_to_four_and_says_so(backend: Backend) -> None:
    table = await make_table(backend)
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await client.call_tool(
            "bulk_insert",
            {"table": table, "records": with_bad_batch_five(), "batch_size": 10, "atomic": False},
        )
    assert not result.is_error, result.content
    data = result.structured_content
    assert (data["inserted"], data["batches"], data["committed_batches"]) == (40, 10, 4)
    [failed] = data["failed_batches"]
    assert (failed["batch"], failed["first_record"], failed["last_record"], failed["code"]) == (5, 40, 49, "CONSTRAINT_VIOLATION")
    assert "resume from record 40" in data["hint"]
    assert [r[0] for r in await rows(backend, table)] == list(range(40))


async def test_progress_is_reported_per_batch(backend: Backend) -> None:
    table = await make_table(backend)
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await client.call_tool(
            "bulk_insert", {"table": table, "records": people(1, 35), "batch_size": 10},
            progress_callback=on_progress,
        )
    assert not result.is_error, result.content
    assert [(p, t) for p, t, _ in seen] == [(10, 35), (20, 35), (30, 35), (35, 35)]
    assert seen[-1][2] == "batch 4/4"


async def test_twenty_concurrent_calls_insert_the_exact_total(backend: Backend) -> None:
    table = await make_table(backend)
    async with backend.client(mode="read_write", allowed_tables=table, pool_timeout_s=60) as client:
        results = await asyncio.gather(*(
            client.call_tool("bulk_insert", {"table": table, "records": people(n * 50, 50), "batch_size": 20})
            for n in range(20)
        ))
    assert [r.structured_content.get("inserted") for r in results] == [50] * 20, [
        r.structured_content for r in results if r.is_error
    ]
    assert await count(backend, table) == 1000


@pytest.mark.parametrize(
    ("on_conflict", "counts", "name"), [("update", (1, 1, 0), "second"), ("ignore", (1, 0, 1), "first")]
)
async def test_a_key_repeated_within_one_batch(
    backend: Backend, on_conflict: str, counts: tuple[int, int, int], name: str
) -> None:
    table = await make_table(backend)
    records = [{"id": 1, "name": "first"}, {"id": 1, "name": "second"}, {"id": 2, "name": "other"}]
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await client.call_tool(
            "bulk_insert", {"table": table, "records": records, "on_conflict": on_conflict}
        )
    assert not result.is_error, result.content
    data = result.structured_content
    assert (data["inserted"] - 1, data["updated"], data["skipped"]) == counts  # id 2 is one more insert
    assert (await rows(backend, table))[0][1] == name


async def test_same_keys_in_any_order_and_mixed_shapes_in_batches(backend: Backend) -> None:
    table = await make_table(backend)
    records = [
        {"id": 1, "name": "a", "note": "x"},
        {"note": "y", "name": "b", "id": 2},
        {"name": "c", "id": 3},
        {"id": 4, "note": "z", "name": "d"},
    ]
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await client.call_tool("bulk_insert", {"table": table, "records": records, "batch_size": 3})
    assert not result.is_error, result.content
    assert await rows(backend, table) == [(1, "a", "x"), (2, "b", "y"), (3, "c", "none"), (4, "d", "z")]


async def test_postgres_types_that_need_conversion(postgres_backend: Backend) -> None:
    table = unique("bi_pgtypes")
    await postgres_backend.aexecute(
        f"CREATE TABLE {table} (id UUID PRIMARY KEY, at TIMESTAMPTZ, doc JSONB, ok BOOLEAN, n BIGINT)"
    )
    records = [
        {"id": "6f1c1a4e-0000-4000-8000-000000000001", "at": "2024-05-01T10:00:00", "doc": {"a": [1, 2]},
         "ok": True, "n": 5.0},
        {"id": "6f1c1a4e-0000-4000-8000-000000000002", "at": "2024-05-01T10:00:00+02:00", "doc": None,
         "ok": "false", "n": None},
    ]
    async with postgres_backend.client(mode="read_write", allowed_tables=table) as client:
        result = await client.call_tool("bulk_insert", {"table": table, "records": records})
        bad = await client.call_tool("bulk_insert", {"table": table, "records": [{"id": "not-a-uuid"}]})
    assert not result.is_error, result.content
    found = await postgres_backend.aexecute(
        f"SELECT to_char(at AT TIME ZONE 'UTC', 'HH24:MI'), doc->'a'->>1, ok, n FROM {table} ORDER BY id"
    )
    assert [tuple(r) for r in found] == [("10:00", "2", True, 5), ("08:00", None, False, None)]
    # PostgreSQL's own input check (text COPY) or sqlgate's conversion: either names the value.
    assert error_code(bad) in ("DB_ERROR", "INVALID_ARGUMENT")
    assert "not-a-uuid" in bad.structured_content["error"]["message"]


TRICKY = ["x'); DROP TABLE t; --", 'quote " and, comma', "new\nline", "", "\\N", "NULL", "  "]


async def test_values_are_stored_exactly_empty_strings_and_nulls_apart(backend: Backend) -> None:
    table = await make_table(backend)
    records = [{"id": i, "name": value, "note": value} for i, value in enumerate(TRICKY)]
    records.append({"id": 100, "name": "null note", "note": None})
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await client.call_tool("bulk_insert", {"table": table, "records": records})
    assert not result.is_error, result.content
    found = await rows(backend, table)
    assert [(r[1], r[2]) for r in found] == [(v, v) for v in TRICKY] + [("null note", None)]


QUOTED_DDL = {
    "sqlite": 'CREATE TABLE {t} (id INTEGER PRIMARY KEY, "order" INTEGER, "Mixed Case" VARCHAR(20))',
    "postgres": 'CREATE TABLE {t} (id INTEGER PRIMARY KEY, "order" INTEGER, "Mixed Case" VARCHAR(20))',
    "mysql": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, `order` INTEGER, `Mixed Case` VARCHAR(20))",
}


@pytest.mark.parametrize("on_conflict", ["error", "update"])
async def test_reserved_and_mixed_case_column_names_are_quoted(backend: Backend, on_conflict: str) -> None:
    table = unique("bi_quoted")
    await backend.aexecute(QUOTED_DDL[backend.name].format(t=table))
    records = [{"id": 1, "order": 5, "Mixed Case": "a"}, {"id": 2, "order": 6, "Mixed Case": "b"}]
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await client.call_tool(
            "bulk_insert", {"table": table, "records": records, "on_conflict": on_conflict}
        )
    assert not result.is_error, result.content
    assert result.structured_content["inserted"] == 2
    assert await count(backend, table) == 2


async def test_mysql_ignore_skips_duplicates_only(mysql_backend: Backend) -> None:
    # INSERT IGNORE would store a cut-down value and a '' for NULL; sqlgate refuses instead.
    table = await make_table(mysql_backend)
    await seed(mysql_backend, table)
    async with mysql_backend.client(mode="read_write", allowed_tables=table) as client:
        too_long = await client.call_tool("bulk_insert", {
            "table": table, "on_conflict": "ignore",
            "records": [{"id": 1, "name": "dup"}, {"id": 7, "name": "x" * 150}],
        })
        null_name = await client.call_tool("bulk_insert", {
            "table": table, "on_conflict": "ignore", "records": [{"id": 8, "name": None}],
        })
    assert error_code(too_long) == "DB_ERROR" and "name" in too_long.structured_content["error"]["message"]
    assert error_code(null_name) == "DB_ERROR"
    assert await count(mysql_backend, table) == 3
