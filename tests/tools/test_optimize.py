"""query_optimization through a real MCP client on sqlite, postgres and mysql (MariaDB),
with 100 000-row tables so the planners behave as they do on real data."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from tests.conftest import REQUIRE, Backend, unique

pytestmark = pytest.mark.anyio
ROWS = 100_000
TABLES = "qo_orders,qo_customers"

ORDERS_DDL = (
    "CREATE TABLE {t} (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, status VARCHAR(20) NOT NULL, "
    "amount DECIMAL(10,2) NOT NULL, created DATE NOT NULL, email VARCHAR(100) NOT NULL, note VARCHAR(100))"
)
CUSTOMERS_DDL = "CREATE TABLE qo_customers (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, ref INTEGER)"

# Fast bulk generation per database: generate_series, MariaDB's Sequence engine, a recursive CTE.
FILL = {
    "postgres": (
        "INSERT INTO {t} SELECT g, g % 5000, (ARRAY['new','paid','shipped','void'])[g % 4 + 1], "
        "(g % 1000) / 10.0, DATE '2020-01-01' + (g % 1500), 'user' || g || '@example.com', "
        "CASE WHEN g % 10 = 0 THEN NULL ELSE 'n' || g END FROM generate_series(1, {n}) AS g"
    ),
    "mysql": (
        "INSERT INTO {t} SELECT seq, seq % 5000, ELT(seq % 4 + 1, 'new','paid','shipped','void'), "
        "(seq % 1000) / 10, DATE_ADD('2020-01-01', INTERVAL seq % 1500 DAY), CONCAT('user', seq, '@example.com'), "
        "IF(seq % 10 = 0, NULL, CONCAT('n', seq)) FROM seq_1_to_{n}"
    ),
    "sqlite": (
        "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) "
        "INSERT INTO {t} SELECT n, n % 5000, CASE n % 4 WHEN 0 THEN 'new' WHEN 1 THEN 'paid' WHEN 2 THEN "
        "'shipped' ELSE 'void' END, (n % 1000) / 10.0, date('2020-01-01', '+' || (n % 1500) || ' days'), "
        "'user' || n || '@example.com', CASE WHEN n % 10 = 0 THEN NULL ELSE 'n' || n END FROM g"
    ),
}
CUSTOMERS_FILL = {
    "postgres": "INSERT INTO qo_customers SELECT g, 'c' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE g END "
                "FROM generate_series(1, 5000) AS g",
    "mysql": "INSERT INTO qo_customers SELECT seq, CONCAT('c', seq), IF(seq % 7 = 0, NULL, seq) FROM seq_1_to_5000",
    "sqlite": "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 5000) "
              "INSERT INTO qo_customers SELECT n, 'c' || n, CASE WHEN n % 7 = 0 THEN NULL ELSE n END FROM g",
}
ANALYZE = {"postgres": "ANALYZE {t}", "mysql": "ANALYZE TABLE {t}", "sqlite": "ANALYZE"}


async def make_orders(backend: Backend, table: str, rows: int = ROWS) -> None:
    await backend.aexecute(
        f"DROP TABLE IF EXISTS {table}",
        ORDERS_DDL.format(t=table),
        FILL[backend.name].format(t=table, n=rows),
        ANALYZE[backend.name].format(t=table),
    )


_SHOPS: set[str] = set()


def ensure_shop(backend: Backend) -> Backend:
    """``qo_orders`` (100 000 rows, indexed on customer_id) and ``qo_customers`` (5 000 rows)."""
    if backend.url not in _SHOPS:
        asyncio.run(make_orders(backend, "qo_orders"))
        backend.execute(
            "CREATE INDEX ix_qo_orders_customer ON qo_orders (customer_id)",
            "DROP TABLE IF EXISTS qo_customers",
            CUSTOMERS_DDL,
            CUSTOMERS_FILL[backend.name],
            ANALYZE[backend.name].format(t="qo_customers"),
        )
        _SHOPS.add(backend.url)
    return backend


@pytest.fixture(scope="session")
def shop(backend: Backend) -> Backend:
    return ensure_shop(backend)


async def hypopg_missing(backend: Backend) -> str | None:
    """Why hypopg cannot be created in the session database, or None once it is there.

    ``SQLGATE_TEST_HYPOPG=off`` acts as if the server had no hypopg (to check that the
    hypopg-proof tests then skip rather than error)."""
    if os.environ.get("SQLGATE_TEST_HYPOPG", "").lower() in ("off", "0", "false"):
        return "hypopg is treated as unavailable (SQLGATE_TEST_HYPOPG=off)"
    available = await backend.aexecute("SELECT default_version FROM pg_available_extensions WHERE name = 'hypopg'")
    if not available:
        return ("the hypopg extension is not available on this PostgreSQL server "
                "(Debian: apt-get install postgresql-15-hypopg; .ci/apt-packages installs it)")
    # The test, not sqlgate, creates it: sqlgate only uses hypopg where an administrator did.
    await backend.aexecute("CREATE EXTENSION IF NOT EXISTS hypopg")
    return None


async def require_hypopg(backend: Backend) -> Backend:
    """Skip (or, under SQLGATE_TEST_REQUIRE_SERVICES, fail) a test that needs hypopg."""
    reason = await hypopg_missing(backend)
    if reason is not None:
        if REQUIRE:
            pytest.fail(f"SQLGATE_TEST_REQUIRE_SERVICES is set but {reason}", pytrace=False)
        pytest.skip(reason)
    return backend


@pytest.fixture(scope="session")
def hypopg(postgres_backend: Backend) -> Backend:
    """The session's PostgreSQL database with hypopg created in it (only for hypopg-proof tests)."""
    return asyncio.run(require_hypopg(postgres_backend))


@pytest.fixture(scope="session")
def hypopg_shop(hypopg: Backend) -> Backend:
    """The shop tables in the hypopg database, built outside any running event loop (under
    pytest-xdist no earlier test in the worker may have built them)."""
    return ensure_shop(hypopg)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def optimize(backend: Backend, tables: str = TABLES, mode: str = "read_only", **arguments: Any) -> Any:
    async with backend.client(allowed_tables=tables, mode=mode) as client:
        return await client.call_tool("query_optimization", arguments)


def ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return result.structured_content


def codes(data: dict[str, Any]) -> set[str]:
    return {f["code"] for f in data["findings"]}


async def test_unindexed_filter_suggestion_then_index_is_used(backend: Backend) -> None:
    table = unique("qo_idx")
    await make_orders(backend, table, 50_000)
    if backend.name == "postgres":
        await require_hypopg(backend)
    query = f"SELECT id, amount FROM {table} WHERE email = :email"
    data = ok(await optimize(backend, table, query=query, parameters={"email": "user77@example.com"}))
    assert [s["columns"] for s in data["index_suggestions"]] == [["email"]]
    suggestion = data["index_suggestions"][0]
    assert suggestion["table"] == table and "CREATE INDEX" in suggestion["create_statement"]
    assert "full_scan_large_table" in codes(data)
    assert [s["access"] for s in data["plan"]["scans"]] == ["full_scan"]
    if backend.name == "mysql":
        assert suggestion.get("verified") is None and "unverified" in suggestion["verification"]
    else:  # hypopg on PostgreSQL, a rolled-back real index on SQLite
        assert suggestion["verified"] is True
    # The tool never creates it: the table still has no index on email.
    again = ok(await optimize(backend, table, query=query, parameters={"email": "user77@example.com"}))
    assert again["index_suggestions"] == data["index_suggestions"] or again["index_suggestions"][0]["columns"] == ["email"]

    await backend.aexecute(suggestion["create_statement"])
    after = ok(await optimize(backend, table, query=query, parameters={"email": "user77@example.com"}))
    index_name = suggestion["create_statement"].split()[2].strip('"`')
    assert [(s["access"], s["index"]) for s in after["plan"]["scans"]] == [("index_scan", index_name)]
    assert after["index_suggestions"] == []  # no duplicate of the index just created
    assert [c["columns"] for c in after["already_indexed"]] == [["email"]]
    assert "full_scan_large_table" not in codes(after)


async def test_existing_index_gives_no_duplicate_suggestion(shop: Backend) -> None:
    data = ok(await optimize(shop, query="SELECT id FROM qo_orders WHERE customer_id = 7"))
    assert data["index_suggestions"] == []
    assert data["already_indexed"] == [
        {"table": "qo_orders", "columns": ["customer_id"], "existing_index": "ix_qo_orders_customer"}
    ]
    assert data["findings"] == []


async def test_prefix_of_existing_index_is_not_suggested(shop: Backend) -> None:
    # The primary key (id) serves both a lookup and an ORDER BY id.
    data = ok(await optimize(shop, query="SELECT id, status FROM qo_orders WHERE id > 10 ORDER BY id LIMIT 5"))
    assert data["index_suggestions"] == []
    assert data["already_indexed"][0]["columns"] == ["id"]


ANTI_PATTERNS = [
    ("full_scan_large_table", "SELECT id FROM qo_orders WHERE email = 'user5@example.com'"),
    ("select_star", "SELECT * FROM qo_orders WHERE id = 5"),
    ("leading_wildcard_like", "SELECT id FROM qo_orders WHERE email LIKE '%5@example.com' LIMIT 10"),
    ("function_on_filtered_column", "SELECT id FROM qo_orders WHERE lower(status) = 'paid' LIMIT 10"),
    ("implicit_cross_join", "SELECT o.id, c.name FROM qo_orders o, qo_customers c WHERE o.id < 3"),
    ("or_across_columns", "SELECT id FROM qo_orders WHERE customer_id = 5 OR status = 'void' LIMIT 10"),
    ("not_in_nullable_subquery", "SELECT id FROM qo_customers WHERE id NOT IN (SELECT ref FROM qo_customers)"),
    ("missing_limit", "SELECT id, amount FROM qo_orders"),
    ("order_by_unindexed", "SELECT id FROM qo_orders ORDER BY amount DESC LIMIT 10"),
    ("correlated_subquery",
     "SELECT c.id, (SELECT count(*) FROM qo_orders o WHERE o.customer_id = c.id) AS n FROM qo_customers c "
     "WHERE c.id < 10"),
    ("count_star_huge", "SELECT count(*) FROM qo_orders"),
    ("distinct_join_fanout",
     "SELECT DISTINCT c.name FROM qo_customers c JOIN qo_orders o ON o.customer_id = c.id WHERE c.id < 10"),
]


@pytest.mark.parametrize(("code", "query"), ANTI_PATTERNS, ids=[c for c, _ in ANTI_PATTERNS])
async def test_anti_pattern_is_found(shop: Backend, code: str, query: str) -> None:
    data = ok(await optimize(shop, query=query))
    found = [f for f in data["findings"] if f["code"] == code]
    assert found, data["findings"]
    assert found[0]["hint"] and found[0]["severity"] in ("high", "medium", "low", "info")


@pytest.mark.parametrize(
    "query",
    [
        "SELECT id, status FROM qo_orders WHERE id = :id",
        "SELECT o.id, c.name FROM qo_orders o JOIN qo_customers c ON c.id = o.customer_id WHERE o.customer_id = :id",
        "SELECT c.id FROM qo_customers c WHERE NOT EXISTS (SELECT 1 FROM qo_orders o WHERE o.customer_id = c.id) "
        "AND c.id < :id",
        "SELECT status, count(*) AS n FROM qo_orders WHERE customer_id = :id GROUP BY status",
    ],
    ids=["pk_lookup", "indexed_join", "not_exists", "indexed_aggregate"],
)
async def test_clean_query_has_no_finding(shop: Backend, query: str) -> None:
    data = ok(await optimize(shop, query=query, parameters={"id": 42}))
    assert data["findings"] == []
    assert data["index_suggestions"] == []


async def test_leading_wildcard_in_a_parameter(shop: Backend) -> None:
    data = ok(await optimize(shop, query="SELECT id FROM qo_orders WHERE email LIKE :p LIMIT 5",
                             parameters={"p": "%@example.com"}))
    assert "leading_wildcard_like" in codes(data)


async def test_analyze_select_returns_actual_rows(shop: Backend) -> None:
    data = ok(await optimize(shop, query="SELECT id FROM qo_orders WHERE customer_id = :c", parameters={"c": 7},
                             analyze=True))
    plan = data["plan"]
    assert plan["analyzed"] is True
    assert plan["actual_rows"] == ROWS / 5000
    assert plan["actual_time_ms"] is not None


async def test_analyze_delete_is_refused_and_nothing_changes(shop: Backend) -> None:
    query = "DELETE FROM qo_orders WHERE customer_id = 3"
    refused = await optimize(shop, mode="read_write", query=query, analyze=True)
    assert refused.is_error and refused.structured_content["error"]["code"] == "STATEMENT_NOT_ALLOWED"
    assert "analyze=false" in refused.structured_content["error"]["hint"]
    estimated = ok(await optimize(shop, mode="read_write", query=query))
    assert estimated["statement_kind"] == "delete" and estimated["plan"]["analyzed"] is False
    denied = await optimize(shop, query=query)  # read_only: the write is denied outright
    assert denied.structured_content["error"]["code"] == "WRITE_NOT_ALLOWED"
    count = await shop.aexecute("SELECT count(*) FROM qo_orders WHERE customer_id = 3")
    assert count[0][0] == ROWS / 5000


async def test_denied_sql_is_refused(shop: Backend) -> None:
    result = await optimize(shop, query="SELECT * FROM secret_table")
    assert result.structured_content["error"]["code"] == "TABLE_NOT_ALLOWED"
    explain = await optimize(shop, query="EXPLAIN SELECT id FROM qo_orders")
    assert explain.structured_content["error"]["code"] == "INVALID_ARGUMENT"


async def test_complexity_levels(shop: Backend) -> None:
    simple = ok(await optimize(shop, query="SELECT id FROM qo_orders WHERE id = 1"))
    assert simple["complexity"]["level"] == "simple"
    complex_query = (
        "WITH big AS (SELECT customer_id, sum(amount) AS total FROM qo_orders GROUP BY customer_id) "
        "SELECT c.name, b.total, rank() OVER (ORDER BY b.total DESC) AS r, "
        "(SELECT max(o.amount) FROM qo_orders o WHERE o.customer_id = c.id) AS top "
        "FROM qo_customers c JOIN big b ON b.customer_id = c.id "
        "WHERE c.id IN (SELECT customer_id FROM qo_orders WHERE status = 'void') LIMIT 10"
    )
    data = ok(await optimize(shop, query=complex_query, suggest_indexes=False))
    features = data["complexity"]["features"]
    assert data["complexity"]["level"] == "complex"
    assert features["ctes"] == 1 and features["window_functions"] == 1
    assert features["correlated_subqueries"] == 1 and features["joins"] == 1
    assert data["index_suggestions"] == []


async def test_plan_summary_shows_joins_and_sorts(shop: Backend) -> None:
    data = ok(await optimize(
        shop,
        query="SELECT o.id, c.name FROM qo_orders o JOIN qo_customers c ON c.id = o.customer_id "
              "WHERE o.amount > 99 ORDER BY o.note LIMIT 20",
    ))
    plan = data["plan"]
    assert plan["joins"] and plan["sorts"]
    assert {s["table"].lower() for s in plan["scans"]} >= {"c", "o"} or {
        s["table"] for s in plan["scans"]} >= {"qo_orders", "qo_customers"}
    assert plan["raw"]


async def test_tool_is_listed_read_only(shop: Backend) -> None:
    async with shop.client(allowed_tables=TABLES) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    tool = tools["query_optimization"]
    assert tool.annotations.read_only_hint is True
    assert {"query", "parameters", "analyze", "suggest_indexes", "database"} <= set(tool.input_schema["properties"])


# ------------------------------------------------------------------ PostgreSQL only


async def test_hypopg_cost_before_and_after(hypopg: Backend) -> None:
    postgres_backend = hypopg
    table = unique("qo_hypo")
    await make_orders(postgres_backend, table, 50_000)
    data = ok(await optimize(postgres_backend, table,
                             query=f"SELECT id FROM {table} WHERE status = 'void' AND created >= '2023-01-01' "
                                   f"AND email = 'user9@example.com'"))
    suggestion = data["index_suggestions"][0]
    assert suggestion["columns"][:2] in (["status", "email"], ["email", "status"])  # equality first
    assert suggestion["columns"][2] == "created"  # then the range
    assert suggestion["verified"] is True
    assert suggestion["cost_after"] < suggestion["cost_before"] == data["plan"]["total_cost"]
    # The hypothetical index is gone afterwards, and no real one was made.
    indexes = await postgres_backend.aexecute(f"SELECT count(*) FROM pg_indexes WHERE tablename = '{table}'")
    assert indexes[0][0] == 1  # the primary key only


async def test_hypopg_drops_suggestions_that_do_not_help(hypopg_shop: Backend) -> None:
    shop = hypopg_shop
    # Every row matches: the planner prefers a sequential scan to any index.
    data = ok(await optimize(shop, query="SELECT id, note FROM qo_orders WHERE amount >= 0 LIMIT 5"))
    assert data["index_suggestions"] == []
    assert any("dropped suggestion" in note and "amount" in note for note in data["dialect_notes"])
    assert "full_scan_large_table" not in codes(data)


async def test_without_hypopg_suggestions_are_unverified(postgres_backend: Backend) -> None:
    table = unique("qo_nohypo")
    await make_orders(postgres_backend, table, 20_000)
    await postgres_backend.aexecute("DROP EXTENSION IF EXISTS hypopg")
    try:
        data = ok(await optimize(postgres_backend, table, query=f"SELECT id FROM {table} WHERE email = 'x'"))
    finally:
        await hypopg_missing(postgres_backend)  # put it back where the server has it
    suggestion = data["index_suggestions"][0]
    assert suggestion.get("verified") is None
    assert "hypopg extension is not installed" in suggestion["verification"]


async def test_mysql_notes_mention_filesort_and_key_len(shop: Backend) -> None:
    if shop.name != "mysql":
        pytest.skip("MySQL/MariaDB plan notes")
    shop_backend = shop
    data = ok(await optimize(shop_backend, query="SELECT id FROM qo_orders WHERE customer_id = 3 ORDER BY amount LIMIT 5"))
    notes = " ".join(data["dialect_notes"])
    assert "filesort" in notes and "key_len" in notes


async def test_analyze_runs_under_the_statement_timeout(shop: Backend) -> None:
    async with shop.client(allowed_tables=TABLES, statement_timeout_ms=300) as client:
        result = await client.call_tool("query_optimization", {
            "query": "SELECT count(*) FROM qo_orders a CROSS JOIN qo_orders b WHERE a.amount + b.amount > 1000",
            "analyze": True,
        })
    assert result.is_error and result.structured_content["error"]["code"] == "TIMEOUT"


async def test_typed_parameters_are_bound(shop: Backend) -> None:
    data = ok(await optimize(
        shop, query="SELECT id FROM qo_orders WHERE created >= :since AND customer_id = :c ORDER BY created LIMIT 5",
        parameters={"since": "2021-01-01", "c": 11}, analyze=True,
    ))
    assert data["plan"]["actual_rows"] == 5
    missing = await optimize(shop, query="SELECT id FROM qo_orders WHERE id = :id")
    assert missing.structured_content["error"]["code"] == "INVALID_ARGUMENT"
