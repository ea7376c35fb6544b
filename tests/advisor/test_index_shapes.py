"""Every index shape query_optimization diagnoses is suggested, and the suggestion works:
through a real MCP client on SQLite, PostgreSQL (with hypopg where a test proves a set)
and MariaDB, the test builds what was suggested and checks that the database's own plan
then uses it (and, where the planner has costs, that the plan is cheaper).

Tables are small (20 000 / 5 000 rows): enough for every planner to prefer an index for
a selective filter, quick to build on each server.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Backend
from tests.tools.test_optimize import require_hypopg

pytestmark = pytest.mark.anyio
TABLES = "sh_orders,sh_customers"

DDL = [
    "DROP TABLE IF EXISTS sh_orders",
    "DROP TABLE IF EXISTS sh_customers",
    "CREATE TABLE sh_customers (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL, region VARCHAR(20) NOT NULL, "
    "name VARCHAR(50) NOT NULL)",
    "CREATE TABLE sh_orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES sh_customers (id), "
    "status VARCHAR(12) NOT NULL, coupon VARCHAR(20), total DECIMAL(10,2) NOT NULL)",
]
FILL = {
    "postgres": [
        "INSERT INTO sh_customers SELECT g, 'user' || g || '@example.com', 'r' || (g % 20), 'c' || g "
        "FROM generate_series(1, 5000) g",
        "INSERT INTO sh_orders SELECT g, 1 + (g * 7919) % 5000, (ARRAY['new','paid','shipped','void'])[1 + g % 4], "
        "CASE WHEN g % 1000 = 0 THEN 'C' || (g / 1000) END, (g % 1000) / 10.0 FROM generate_series(1, 20000) g",
        "ANALYZE sh_customers", "ANALYZE sh_orders",
    ],
    "mysql": [
        "INSERT INTO sh_customers SELECT seq, CONCAT('user', seq, '@example.com'), CONCAT('r', seq % 20), "
        "CONCAT('c', seq) FROM seq_1_to_5000",
        "INSERT INTO sh_orders SELECT seq, 1 + (seq * 7919) % 5000, ELT(1 + seq % 4, 'new','paid','shipped','void'), "
        "IF(seq % 1000 = 0, CONCAT('C', seq DIV 1000), NULL), (seq % 1000) / 10 FROM seq_1_to_20000",
        "ANALYZE TABLE sh_customers", "ANALYZE TABLE sh_orders",
    ],
    "sqlite": [
        "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 5000) "
        "INSERT INTO sh_customers SELECT n, 'user' || n || '@example.com', 'r' || (n % 20), 'c' || n FROM g",
        "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20000) "
        "INSERT INTO sh_orders SELECT n, 1 + (n * 7919) % 5000, CASE n % 4 WHEN 0 THEN 'new' WHEN 1 THEN 'paid' "
        "WHEN 2 THEN 'shipped' ELSE 'void' END, CASE WHEN n % 1000 = 0 THEN 'C' || (n / 1000) END, "
        "(n % 1000) / 10.0 FROM g",
        "ANALYZE",
    ],
}

FK_JOIN = ("SELECT o.id, o.total FROM sh_orders o JOIN sh_customers c ON c.id = o.customer_id "
           "WHERE c.email = 'user77@example.com'")
OR_FILTER = "SELECT id, status FROM sh_orders WHERE total = 12.3 OR coupon = 'C7'"
PREFIX_LIKE = "SELECT id, name FROM sh_customers WHERE email LIKE 'user77@%'"
LOWER_FILTER = "SELECT id, name FROM sh_customers WHERE lower(email) = 'user77@example.com'"

_READY: set[str] = set()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def shapes(backend: Backend) -> AsyncIterator[Backend]:
    """The shapes tables (built once per session); indexes a test builds are dropped after it."""
    if backend.url not in _READY:
        await backend.aexecute(*DDL, *FILL[backend.name])
        _READY.add(backend.url)
    yield backend
    for name, table in await _secondary_indexes(backend):
        await backend.aexecute(f"DROP INDEX {name}" + (f" ON {table}" if backend.name == "mysql" else ""))


async def _secondary_indexes(backend: Backend) -> list[tuple[str, str]]:
    # Only sqlgate's ix_ names: the primary keys and MariaDB's foreign-key index stay.
    if backend.name == "postgres":
        rows = await backend.aexecute(
            "SELECT indexname, tablename FROM pg_indexes WHERE tablename IN ('sh_orders', 'sh_customers') "
            "AND indexname LIKE 'ix%'")
    elif backend.name == "mysql":
        rows = await backend.aexecute(
            "SELECT DISTINCT index_name, table_name FROM information_schema.statistics "
            "WHERE table_schema = DATABASE() AND table_name IN ('sh_orders', 'sh_customers') AND index_name LIKE 'ix%'")
    else:
        rows = await backend.aexecute(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name IN ('sh_orders', 'sh_customers') AND name LIKE 'ix%'")
    return [(r[0], r[1]) for r in rows]


async def optimize(backend: Backend, query: str, **arguments: Any) -> dict[str, Any]:
    async with backend.client(allowed_tables=TABLES) as client:
        result = await client.call_tool("query_optimization", {"query": query, **arguments})
    assert not result.is_error, result.content
    return result.structured_content  # type: ignore[no-any-return]


async def build(backend: Backend, suggestions: list[dict[str, Any]]) -> None:
    """Run each CREATE INDEX exactly as returned: it must parse and run on the real server."""
    for suggestion in suggestions:
        await backend.aexecute(suggestion["create_statement"])
    await backend.aexecute(*FILL[backend.name][-2 if backend.name != "sqlite" else -1:])


def used_indexes(data: dict[str, Any]) -> set[str]:
    """Index names the database's plan uses (from the raw plan)."""
    raw = data["plan"]["raw"]
    if data["plan"]["database"] == "postgresql":
        return set(re.findall(r'"Index Name": "([^"]+)"', json.dumps(raw)))
    if data["plan"]["database"] == "sqlite":
        return {m for row in raw for m in re.findall(r"USING (?:COVERING )?INDEX (\w+)", row["detail"])}
    return {name for scan in data["plan"]["scans"] if scan.get("index") for name in scan["index"].split(",")}


async def check_built_and_used(backend: Backend, query: str, expected: list[str]) -> dict[str, Any]:
    before = await optimize(backend, query)
    suggestions = before["index_suggestions"]
    found = {s["create_statement"].split(" ON ", 1)[1] for s in suggestions}
    assert set(expected) <= found, (expected, found)
    if backend.name == "mysql":
        assert all(s.get("verified") is None and "unverified" in s["verification"] for s in suggestions)
    else:
        assert all(s["verified"] is True for s in suggestions), suggestions
    await build(backend, suggestions)
    after = await optimize(backend, query)
    wanted = {s["name"] for s in suggestions if s["create_statement"].split(" ON ", 1)[1] in expected}
    assert wanted <= used_indexes(after), (wanted, after["plan"])
    if before["plan"].get("total_cost") is not None and after["plan"].get("total_cost") is not None:
        assert after["plan"]["total_cost"] < before["plan"]["total_cost"] / 2
    assert after["index_suggestions"] == [], after["index_suggestions"]  # nothing left to suggest
    return before


async def test_from_side_foreign_key_join(shapes: Backend) -> None:
    if shapes.name == "postgres":
        await require_hypopg(shapes)
    if shapes.name == "mysql":
        # InnoDB indexes every foreign key itself: the FROM side is served already.
        before = await check_built_and_used(shapes, FK_JOIN, ["sh_customers (email)"])
        assert [c["columns"] for c in before["already_indexed"]] == [["customer_id"]]
        return
    before = await check_built_and_used(shapes, FK_JOIN, ["sh_orders (customer_id)", "sh_customers (email)"])
    reasons = {s["table"]: s["reason"] for s in before["index_suggestions"]}
    assert "join key customer_id" in reasons["sh_orders"]


async def test_or_across_columns_one_index_per_branch(shapes: Backend) -> None:
    if shapes.name == "postgres":
        await require_hypopg(shapes)
    before = await check_built_and_used(shapes, OR_FILTER, ["sh_orders (total)", "sh_orders (coupon)"])
    [first, second] = before["index_suggestions"]
    assert first["works_with"] == [second["name"]] and second["works_with"] == [first["name"]]
    [finding] = [f for f in before["findings"] if f["code"] == "or_across_columns"]
    assert "one index per branch" in finding["hint"]


PREFIX_INDEX = {
    "postgres": "sh_customers (email text_pattern_ops)",  # the session database has a non-C collation
    "sqlite": "sh_customers (email COLLATE NOCASE)",  # SQLite's LIKE is case-insensitive
    "mysql": "sh_customers (email)",  # a _ci collation index serves LIKE 'abc%'
}


async def test_prefix_like_under_the_default_collation(shapes: Backend) -> None:
    if shapes.name == "postgres":
        await require_hypopg(shapes)
        collation = (await shapes.aexecute("SELECT datcollate FROM pg_database WHERE datname = current_database()"))
        if collation[0][0] in ("C", "POSIX"):
            pytest.skip("a C collation needs no operator class: a plain index serves LIKE 'abc%'")
    await check_built_and_used(shapes, PREFIX_LIKE, [PREFIX_INDEX[shapes.name]])


async def test_lower_filter_gets_an_expression_index(shapes: Backend) -> None:
    if shapes.name == "mysql":
        # MariaDB has no functional indexes; its _ci collation makes lower() needless.
        data = await optimize(shapes, LOWER_FILTER)
        assert data["index_suggestions"] == []
        [finding] = [f for f in data["findings"] if f["code"] == "function_on_filtered_column"]
        assert "case-insensitively" in finding["hint"]
        return
    if shapes.name == "postgres":
        await require_hypopg(shapes)
    expected = "sh_customers ((lower(email)))" if shapes.name == "postgres" else "sh_customers (lower(email))"
    before = await check_built_and_used(shapes, LOWER_FILTER, [expected])
    [finding] = [f for f in before["findings"] if f["code"] == "function_on_filtered_column"]
    assert "see index_suggestions" in finding["hint"]


async def test_pk_served_queries_get_no_suggestion(shapes: Backend) -> None:
    for query in ("SELECT id, status FROM sh_orders WHERE id = 5",
                  "SELECT o.total, c.name FROM sh_orders o JOIN sh_customers c ON c.id = o.customer_id "
                  "WHERE o.id = 5"):
        data = await optimize(shapes, query)
        assert data["index_suggestions"] == [], data["index_suggestions"]
        assert data["findings"] == []


async def test_hypopg_keeps_a_set_whose_members_only_help_together(postgres_backend: Backend) -> None:
    await require_hypopg(postgres_backend)
    backend = postgres_backend
    if backend.url not in _READY:
        await backend.aexecute(*DDL, *FILL["postgres"])
        _READY.add(backend.url)
    data = await optimize(backend, OR_FILTER)
    suggestions = data["index_suggestions"]
    assert len(suggestions) == 2
    # Alone, either index leaves the other branch to a full scan: no gain. Together they
    # replace it; each one's marginal gain (given the other) is almost everything.
    for suggestion in suggestions:
        assert suggestion["marginal_gain"] > 0.5
    assert [s["order"] for s in suggestions] == [1, 2]
    assert suggestions[0]["cost_after"] >= suggestions[0]["cost_before"] * 0.9  # the first alone: ~no gain
    assert suggestions[1]["cost_after"] == data["index_set"]["cost_after"] < data["plan"]["total_cost"] / 2
    assert data["index_set"]["estimated_size_bytes"] > 0
    assert all(s["estimated_size_bytes"] > 0 for s in suggestions)


WORKLOAD = [
    FK_JOIN,
    OR_FILTER,
    PREFIX_LIKE,
    "SELECT id FROM sh_orders WHERE status = 'void' AND total > 99",
    "SELECT id, total FROM sh_orders WHERE customer_id = 99 ORDER BY total DESC LIMIT 5",
    "SELECT c.name FROM sh_customers c WHERE c.region = 'r3' AND c.email = 'user3@example.com'",
    "SELECT count(*) FROM sh_orders WHERE customer_id IN (1, 2, 3)",
    "SELECT id, status FROM sh_orders WHERE id = 7",
]


async def test_workload_set_is_no_larger_than_per_query_advice_and_covers_each_query(shapes: Backend) -> None:
    if shapes.name == "postgres":
        await require_hypopg(shapes)
    per_query = [await optimize(shapes, query) for query in WORKLOAD]
    async with shapes.client(allowed_tables=TABLES) as client:
        result = await client.call_tool("workload_optimization", {"queries": [{"query": q} for q in WORKLOAD]})
    assert not result.is_error, result.content
    data = result.structured_content
    total = sum(len(p["index_suggestions"]) for p in per_query)
    assert 0 < len(data["index_suggestions"]) <= total
    assert [q["query"] for q in data["queries"]] == list(range(len(WORKLOAD)))
    names = {s["name"] for s in data["index_suggestions"]}
    for position, advice in enumerate(per_query):
        answer = data["queries"][position]
        assert set(answer.get("uses", [])) <= names
        if advice["index_suggestions"]:  # a query the per-query advice helps is served by the set
            assert answer.get("uses"), (WORKLOAD[position], answer)
            if shapes.name == "postgres":
                assert answer["cost_after"] < answer["cost_before"] * 0.9
        else:
            assert not answer.get("uses")
    # Every statement runs on the real server as returned.
    await build(shapes, data["index_suggestions"])
    if shapes.name == "postgres":
        assert data["index_set"]["cost_after"] < data["index_set"]["cost_before"]


async def test_workload_refuses_an_empty_or_denied_list(sqlite_backend: Backend) -> None:
    async with sqlite_backend.client(allowed_tables=TABLES) as client:
        empty = await client.call_tool("workload_optimization", {"queries": []})
        denied = await client.call_tool("workload_optimization", {"queries": [
            {"query": "SELECT 1"}, {"query": "SELECT * FROM secret_table"}]})
    assert empty.structured_content["error"]["code"] == "INVALID_ARGUMENT"
    assert denied.structured_content["error"]["code"] == "TABLE_NOT_ALLOWED"
    assert denied.structured_content["error"]["message"].startswith("query 1:")


async def test_top_statements_are_refused_unless_the_operator_allows_them(backend: Backend) -> None:
    """pg_stat_statements holds every client's statements: by default an agent never reads
    them (another session's SQL); the operator opts in with workload_statistics."""
    async with backend.client(allowed_tables=TABLES) as client:
        result = await client.call_tool("workload_optimization", {"top_statements": 3})
    error = result.structured_content["error"]
    assert error["code"] == "STATEMENT_NOT_ALLOWED"
    assert "other clients" in error["message"] and "SQLGATE_WORKLOAD_STATISTICS" in error["hint"]


async def test_top_statements_need_pg_stat_statements(backend: Backend) -> None:
    # The session databases have no pg_stat_statements, and sqlgate never creates it.
    async with backend.client(allowed_tables=TABLES, workload_statistics=True) as client:
        result = await client.call_tool("workload_optimization", {"top_statements": 3})
    error = result.structured_content["error"]
    assert error["code"] == "DB_ERROR"
    assert "pg_stat_statements" in error["message"] and "queries" in error["hint"]


# An admin URL of a PostgreSQL server started with shared_preload_libraries =
# 'pg_stat_statements' (the project machines' server is not: restarting it is an admin's call).
PGSS_ADMIN = os.environ.get("SQLGATE_TEST_PGSS_URL", "")


@pytest.mark.skipif(not PGSS_ADMIN, reason="set SQLGATE_TEST_PGSS_URL to a PostgreSQL admin URL whose server "
                                           "preloads pg_stat_statements")
async def test_top_statements_from_pg_stat_statements(data_dir: Path) -> None:
    name = f"sqlgate_pgss_{secrets.token_hex(3)}"
    admin = Backend("postgres", PGSS_ADMIN, "postgres", data_dir)
    await admin.aexecute("COMMIT", f'CREATE DATABASE "{name}"')
    backend = Backend("postgres", PGSS_ADMIN.rsplit("/", 1)[0] + "/" + name, "postgres", data_dir)
    try:
        await backend.aexecute(*DDL, *FILL["postgres"], "CREATE EXTENSION pg_stat_statements",
                               "CREATE EXTENSION hypopg", "SELECT pg_stat_statements_reset()")
        for statement in (OR_FILTER, FK_JOIN, "SELECT id FROM sh_orders WHERE id = 3", "SELECT 1"):
            await backend.aexecute(statement)
        async with backend.client(allowed_tables=TABLES, workload_statistics=True) as client:
            result = await client.call_tool("workload_optimization", {"top_statements": 3})
        assert not result.is_error, result.content
        data = result.structured_content
        texts = [q["statement"] for q in data["queries"]]
        assert all("$1" in t or "id = $" in t for t in texts) and not any(t.startswith("SELECT $1") for t in texts)
        assert all(q["calls"] >= 1 for q in data["queries"])
        leading = {(s["table"], s["columns"][0]) for s in data["index_suggestions"]}
        assert {("sh_orders", "customer_id"), ("sh_customers", "email"), ("sh_orders", "coupon")} <= leading
        await build(backend, data["index_suggestions"])
    finally:
        await admin.aexecute("COMMIT", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_sqlite_proof_needs_no_write_lock(sqlite_backend: Backend) -> None:
    """The candidates are built in an in-memory copy of the schema: a writer holding the
    file's write lock neither blocks the proof nor is touched by it (red team wave 4)."""
    import sqlite3

    if sqlite_backend.url not in _READY:
        await sqlite_backend.aexecute(*DDL, *FILL["sqlite"])
        _READY.add(sqlite_backend.url)
    writer = sqlite3.connect(sqlite_backend.url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # holds the write lock a CREATE INDEX in the file would need
    try:
        data = await optimize(sqlite_backend, PREFIX_LIKE)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    [suggestion] = data["index_suggestions"]
    assert suggestion.get("verified") is True, suggestion
