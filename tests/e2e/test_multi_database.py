"""One sqlgate process serving SQLite, PostgreSQL and MariaDB, each with its own policy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from sqlgate.server.app import build_server
from sqlgate.settings import load_settings
from tests.conftest import Backend, unique

pytestmark = pytest.mark.anyio

SQLGATE = str(Path(sys.executable).parent / "sqlgate")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def three(sqlite_backend: Backend, postgres_backend: Backend, mysql_backend: Backend) -> dict[str, Any]:
    """The same table name on three servers, each row saying where it lives."""
    table = unique("md_src")
    backends = {"lite": sqlite_backend, "pg": postgres_backend, "maria": mysql_backend}
    for name, backend in backends.items():
        await backend.aexecute(
            f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, src VARCHAR(10))",
            f"INSERT INTO {table} (id, src) VALUES (1, '{name}'), (2, '{name}')",
        )
    return {"table": table, "backends": backends}


def databases(three: dict[str, Any]) -> dict[str, Any]:
    table, b = three["table"], three["backends"]
    return {
        "lite": {"url": b["lite"].url, "allowed_tables": [table]},
        "pg": {"url": b["pg"].url, "allowed_tables": [table], "mode": "read_write"},
        "maria": {"url": b["maria"].url, "allowed_tables": [table], "max_rows": 1},
    }


async def test_routing_and_per_database_policy(three: dict[str, Any], data_dir: Path) -> None:
    table = three["table"]
    settings = load_settings(
        {"databases": databases(three), "data_dir": str(data_dir), "audit_enabled": False}
    )
    async with Client(build_server(settings)) as client:

        async def query(sql: str, **args: Any) -> Any:
            return await client.call_tool("execute_query", {"query": sql, **args})

        seen = {}
        for name in ("lite", "pg", "maria"):
            result = await query(f"SELECT DISTINCT src FROM {table}", database=name)
            assert not result.is_error, result.content
            seen[name] = result.structured_content["rows"][0][0]
        default = await query(f"SELECT DISTINCT src FROM {table}")

        pg_write = await query(f"UPDATE {table} SET src = 'pg2' WHERE id = 2", database="pg")
        lite_write = await query(f"UPDATE {table} SET src = 'x' WHERE id = 2", database="lite")
        maria_capped = await query(f"SELECT id FROM {table} ORDER BY id", database="maria")
        pg_uncapped = await query(f"SELECT id FROM {table} ORDER BY id", database="pg")
        unknown = await query(f"SELECT 1 FROM {table}", database="nope")
        schemas = {
            name: (await client.call_tool("describe_schema", {"database": name})).structured_content
            for name in ("lite", "pg", "maria")
        }

    assert seen == {"lite": "lite", "pg": "pg", "maria": "maria"}  # each call reached its own server
    assert default.structured_content["rows"] == [["lite"]]  # the first database is the default
    assert not pg_write.is_error and pg_write.structured_content["rows_affected"] == 1
    assert lite_write.structured_content["error"]["code"] == "WRITE_NOT_ALLOWED"  # lite is read_only
    assert maria_capped.structured_content["truncated"] is True
    assert maria_capped.structured_content["rows"] == [[1]]
    assert pg_uncapped.structured_content["rows"] == [[1], [2]]
    error = unknown.structured_content["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert all(name in error["hint"] for name in ("lite", "pg", "maria"))
    assert {n: s["dialect"] for n, s in schemas.items()} == {"lite": "sqlite", "pg": "postgresql", "maria": "mysql"}
    assert {n: s["mode"] for n, s in schemas.items()}["pg"] == "read_write"
    rows = await three["backends"]["pg"].aexecute(f"SELECT src FROM {table} WHERE id = 2")
    assert rows[0][0] == "pg2"


async def test_toml_databases_over_stdio(three: dict[str, Any], tmp_path: Path) -> None:
    """The documented TOML form, through the real `sqlgate` command over stdio."""
    table, b = three["table"], three["backends"]
    config = tmp_path / "sqlgate.toml"
    config.write_text(
        "audit_enabled = false\n"
        f'data_dir = "{tmp_path}"\n'
        f'[databases.maria]\nurl = "{b["maria"].url}"\nallowed_tables = ["{table}"]\n'
        f'[databases.lite]\nurl = "{b["lite"].url}"\nallowed_tables = ["{table}"]\nmax_rows = 1\n'
    )
    params = StdioServerParameters(command=SQLGATE, args=["serve", "--config", str(config)])
    async with Client(params) as client:
        maria = await client.call_tool("execute_query", {"query": f"SELECT DISTINCT src FROM {table}"})
        lite = await client.call_tool("execute_query", {"query": f"SELECT src FROM {table}", "database": "lite"})
    assert maria.structured_content["rows"] == [["maria"]]  # the first table in the file is the default
    assert lite.structured_content["rows"] == [["lite"]] and lite.structured_content["truncated"] is True


async def test_repeated_database_flags_over_stdio(three: dict[str, Any], tmp_path: Path) -> None:
    table, b = three["table"], three["backends"]
    params = StdioServerParameters(
        command=SQLGATE,
        args=["serve", "--database", f"pg={b['pg'].url}", "--database", f"lite={b['lite'].url}",
              "--allowed-tables", table, "--no-audit-enabled", "--data-dir", str(tmp_path)],
    )
    async with Client(params) as client:
        pg = await client.call_tool("execute_query", {"query": f"SELECT DISTINCT src FROM {table}", "database": "pg"})
        lite = await client.call_tool("execute_query", {"query": f"SELECT DISTINCT src FROM {table}", "database": "lite"})
    assert pg.structured_content["rows"][0][0].startswith("pg")
    assert lite.structured_content["rows"] == [["lite"]]
