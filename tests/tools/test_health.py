"""health_check through a real MCP client, on sqlite, postgres and mysql."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Backend, unique

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"
# Enough work to take a few milliseconds on every database.
SLOW_SQL = (
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000) "
    "SELECT count(*) AS c FROM r AS a CROSS JOIN r AS b"
)


@pytest.fixture(scope="session")
def health_table(backend: Backend) -> tuple[Backend, str]:
    """A whitelisted table with three rows."""
    key = "health_table"
    if key not in backend.extra:
        name = unique("hc")
        backend.execute(
            f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, note VARCHAR(20))",
            f"INSERT INTO {name} (id, note) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        )
        backend.extra[key] = name
    return backend, backend.extra[key]


async def health(client: Any, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool("health_check", arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def leftover_health_tables(backend: Backend) -> list[Any]:
    sql = {
        "sqlite": "SELECT name FROM sqlite_master WHERE name LIKE 'sqlgate_health_%'",
        "postgres": "SELECT relname FROM pg_class WHERE relname LIKE 'sqlgate_health_%'",
        "mysql": "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'sqlgate_health_%'",
    }[backend.name]
    return await backend.aexecute(sql)


async def test_healthy_database_with_round_trip_in_read_only_mode(health_table: tuple[Backend, str]) -> None:
    backend, table = health_table
    # The test servers connect as superusers: the privileges section (tests/test_grants.py) is off here.
    async with backend.client(allowed_tables=table, mode="read_only", check_privileges=False) as client:
        report = await health(client, test_operations=True)
    assert report["status"] == "healthy", report["reasons"]
    (db,) = report["databases"]
    assert db["reachable"] is True and db["latency_ms"] >= 0
    assert db["dialect"] == {"sqlite": "sqlite", "postgres": "postgresql", "mysql": "mysql"}[backend.name]
    assert db["version"]
    assert db["mode"] == "read_only"
    assert db["tables"] == [{"name": table, "exists": True, "rows": 3, "rows_estimated": False}]
    assert db["pool"]["size"] >= 1 and db["pool"]["waiting"] == 0
    trip = db["test_operations"]
    assert trip["ok"] is True and trip["persisted"] is False
    assert trip["steps"] == ["create", "insert", "select", "update", "delete", "rollback"]
    assert db["migrations"]["branch"] == "sqlgate"
    # Nothing the round trip made is visible from another session afterwards.
    assert await leftover_health_tables(backend) == []


async def test_database_still_read_only_after_round_trip(health_table: tuple[Backend, str]) -> None:
    backend, table = health_table
    async with backend.client(allowed_tables=table, mode="read_only", pool_size=1, max_overflow=0) as client:
        await health(client, test_operations=True)
        result = await client.call_tool("execute_query", {"query": f"SELECT count(*) FROM {table}", "fetch_mode": "scalar"})
        assert result.structured_content["value"] == 3
    rows = await backend.aexecute(f"SELECT count(*) FROM {table}")
    assert rows[0][0] == 3


async def test_missing_whitelisted_table_is_degraded(health_table: tuple[Backend, str]) -> None:
    backend, table = health_table
    missing = unique("hc_missing")
    async with backend.client(allowed_tables=f"{table},{missing}") as client:
        report = await health(client)
    assert report["status"] == "degraded"
    assert any(missing in reason for reason in report["reasons"])
    tables = {t["name"]: t for t in report["databases"][0]["tables"]}
    assert tables[missing]["exists"] is False and tables[table]["exists"] is True


async def test_include_stats_false_skips_pool_and_counts(health_table: tuple[Backend, str]) -> None:
    backend, table = health_table
    async with backend.client(allowed_tables=table) as client:
        report = await health(client, include_stats=False)
    db = report["databases"][0]
    assert "pool" not in db
    assert db["tables"] == [{"name": table, "exists": True}]


async def test_slow_queries_are_counted(health_table: tuple[Backend, str]) -> None:
    backend, table = health_table
    async with backend.client(allowed_tables=table, slow_query_ms=1) as client:
        assert (await health(client))["databases"][0]["slow_queries"] == 0
        result = await client.call_tool("execute_query", {"query": SLOW_SQL})
        assert not result.is_error, result.content
        report = await health(client)
    assert report["databases"][0]["slow_queries"] >= 1
    assert report["databases"][0]["slow_query_ms"] == 1


async def test_fast_queries_are_not_counted_as_slow(health_table: tuple[Backend, str]) -> None:
    backend, table = health_table
    async with backend.client(allowed_tables=table, slow_query_ms=60_000) as client:
        await client.call_tool("execute_query", {"query": f"SELECT id FROM {table}"})
        report = await health(client)
    assert report["databases"][0]["slow_queries"] == 0


async def test_unreachable_database_is_unhealthy_and_the_server_still_starts(data_dir: Any) -> None:
    from mcp import Client

    from sqlgate.server.app import build_server
    from sqlgate.settings import load_settings

    settings = load_settings({"database_url": UNREACHABLE, "data_dir": str(data_dir)})
    async with Client(build_server(settings)) as client:
        report = await health(client, test_operations=True)
        query = await client.call_tool("execute_query", {"query": "SELECT 1"})
    assert report["status"] == "unhealthy"
    db = report["databases"][0]
    assert db["reachable"] is False and db["status"] == "unhealthy"
    assert any("unreachable" in reason for reason in report["reasons"])
    assert query.is_error and query.structured_content["error"]["code"] == "DB_UNAVAILABLE"


async def test_one_unreachable_database_among_several(sqlite_backend: Backend) -> None:
    async with sqlite_backend.client(databases=f"down={UNREACHABLE}") as client:
        everything = await health(client)
        only_main = await health(client, database="main")
    assert everything["status"] == "unhealthy"
    assert {d["name"]: d["reachable"] for d in everything["databases"]} == {"main": True, "down": False}
    assert only_main["status"] in ("healthy", "degraded")
    assert [d["name"] for d in only_main["databases"]] == ["main"]


async def test_unknown_database_is_an_invalid_argument(sqlite_backend: Backend) -> None:
    async with sqlite_backend.client() as client:
        result = await client.call_tool("health_check", {"database": "nope"})
    assert result.is_error
    assert result.structured_content["error"]["code"] == "INVALID_ARGUMENT"


async def test_demo_database_reports_its_migrations(tmp_path: Any) -> None:
    from mcp import Client

    from sqlgate.server.app import build_server
    from sqlgate.settings import load_settings

    async with Client(build_server(load_settings({"data_dir": str(tmp_path)}))) as client:
        report = await health(client)
    db = report["databases"][0]
    assert report["status"] == "healthy", report["reasons"]
    assert db["migrations"] == {"branch": "demo", "state": "current", "current": "demo_0001", "head": "demo_0001"}
    assert {t["name"]: t["rows"] for t in db["tables"]}["orders"] == 200


async def test_saturated_pool_is_degraded_not_unreachable(tmp_path: Any) -> None:
    import asyncio

    from mcp import Client

    from sqlgate.server.app import build_server
    from sqlgate.settings import load_settings

    settings = load_settings({
        "data_dir": str(tmp_path), "pool_size": 1, "max_overflow": 0, "pool_timeout_s": 5,
    })
    # SQLite runs this for a few seconds while holding the pool's only connection.
    long_sql = (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 30000000) "
        "SELECT count(*) AS c FROM r"
    )
    async with Client(build_server(settings)) as client:
        busy = asyncio.create_task(client.call_tool("execute_query", {"query": long_sql, "timeout_seconds": 4}))
        await asyncio.sleep(0.3)
        report = await health(client)
        await busy
    db = report["databases"][0]
    assert db["reachable"] is True
    assert db["pool"]["checked_out"] == 1 and db["pool"]["capacity"] == 1
    assert report["status"] == "degraded"
    assert any("pool saturated" in reason for reason in report["reasons"])
