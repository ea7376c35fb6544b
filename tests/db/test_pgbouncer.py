"""sqlgate behind PgBouncer in transaction mode (tests/db/cloud_servers.py starts it in front
of the local PostgreSQL, 4 server connections for many clients): every tool, 20 concurrent
callers, no "prepared statement does not exist".

A server connection belongs to a client only inside a transaction, so named prepared
statements and session settings do not survive: with ``prepared_statements=off`` (or a
URL the pooler detection knows) asyncpg runs unnamed statements only and the session
defaults are set per transaction. The control test shows the fixture really is such a
pooler: plain asyncpg with its statement cache breaks there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import Backend, server_url, unique
from tests.db import cloud_servers

CALLERS = 20


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def bouncer_url(query: str = "") -> str:
    """This session's database on the local PostgreSQL, through PgBouncer."""
    url = make_url(server_url("postgres")).set(host="127.0.0.1", port=cloud_servers.pgbouncer())
    return url.render_as_string(hide_password=False) + query


@pytest.fixture(scope="module")
def items(postgres_backend: Backend) -> str:
    table = unique("pgb_items")
    postgres_backend.execute(
        f"CREATE TABLE {table} (id integer PRIMARY KEY, name text NOT NULL, qty integer NOT NULL)",
        f"INSERT INTO {table} SELECT g, 'item ' || g, g % 7 FROM generate_series(1, 200) g",
        f"ANALYZE {table}",
    )
    return table


def ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return dict(result.structured_content)


async def one_caller(client: Any, table: str, n: int) -> list[str]:
    """Every tool once (writes on this caller's own ids); the error texts it got."""
    errors: list[str] = []

    async def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
        result = await client.call_tool(tool, arguments)
        if result.is_error:
            errors.append(f"{tool}: {result.structured_content or result.content}")
            return None
        return dict(result.structured_content)

    base = 1000 + n * 100
    got = await call("execute_query", {"query": f"SELECT id, name FROM {table} WHERE id = :id", "parameters": {"id": n + 1}})
    if got is not None and got["rows"] != [[n + 1, f"item {n + 1}"]]:
        errors.append(f"execute_query: wrong rows {got['rows']}")
    await call("execute_query", {"query": f"SELECT count(*) AS n FROM {table} WHERE qty = $1", "parameters": [n % 7]})
    await call("transaction_manager", {"operations": [
        {"query": f"INSERT INTO {table} (id, name, qty) VALUES (:id, :name, :qty)",
         "parameters": {"id": base, "name": f"batch {n}", "qty": 1}},
        {"query": f"UPDATE {table} SET qty = qty + 1 WHERE id = :id", "parameters": {"id": base}},
        {"query": f"SELECT qty FROM {table} WHERE id = :id", "parameters": {"id": base}, "fetch_mode": "scalar"},
    ]})
    begun = await call("transaction_manager", {"action": "begin"})
    if begun is not None:
        txid = begun["transaction_id"]
        await call("transaction_manager", {"action": "execute", "transaction_id": txid, "operations": [
            {"query": f"INSERT INTO {table} (id, name, qty) VALUES (:id, 'interactive', 2)", "parameters": {"id": base + 1}},
        ]})
        await call("transaction_manager", {"action": "execute", "transaction_id": txid, "operations": [
            {"query": f"SELECT count(*) FROM {table} WHERE id >= :lo AND id < :hi", "parameters": {"lo": base, "hi": base + 100},
             "fetch_mode": "scalar"},
        ]})
        await call("transaction_manager", {"action": "commit", "transaction_id": txid})
    records = [{"id": base + 10 + i, "name": f"bulk {n}/{i}", "qty": i} for i in range(50)]
    inserted = await call("bulk_insert", {"table": table, "records": records, "batch_size": 20})  # COPY
    if inserted is not None and inserted["inserted"] != 50:
        errors.append(f"bulk_insert: inserted {inserted['inserted']}")
    await call("query_optimization", {"query": f"SELECT * FROM {table} WHERE name = :name", "parameters": {"name": "x"}})
    await call("describe_schema", {"tables": [table], "refresh": n % 2 == 0})
    health = await call("health_check", {"include_stats": True})
    if health is not None and health["databases"][0]["status"] == "unhealthy":
        errors.append(f"health_check: {health['databases'][0]['reasons']}")
    return errors


async def run_callers(backend: Backend, table: str, **settings: Any) -> list[str]:
    async with backend.client(
        mode="read_write", allowed_tables=table, pool_size=10, max_overflow=15, max_open_transactions=CALLERS + 5,
        max_transactions_per_session=CALLERS + 5, check_privileges=False, **settings,
    ) as client:
        results = await asyncio.gather(*(one_caller(client, table, n) for n in range(CALLERS)))
    return [e for found in results for e in found]


async def test_every_tool_with_20_callers_behind_pgbouncer_transaction_mode(items: str, tmp_path: Any) -> None:
    backend = Backend("postgres", bouncer_url(), "postgres", tmp_path)
    errors = await run_callers(backend, items, prepared_statements="off")
    assert errors == [], "\n".join(errors[:10])
    rows = await backend.aexecute(f"SELECT count(*) FROM {items} WHERE id >= 1000")  # fresh rows, all committed
    assert rows[0][0] == CALLERS * (2 + 50)
    await backend.aexecute(f"DELETE FROM {items} WHERE id >= 1000")


async def test_the_pooler_is_detected_from_the_url(items: str, tmp_path: Any) -> None:
    # Prisma's/Supabase's ?pgbouncer=true turns the same mode on without the setting.
    backend = Backend("postgres", bouncer_url("?pgbouncer=true"), "postgres", tmp_path)
    async with backend.client(allowed_tables=items, check_privileges=False) as client:
        results = await asyncio.gather(*(
            client.call_tool("execute_query", {"query": f"SELECT name FROM {items} WHERE id = :id", "parameters": {"id": i + 1}})
            for i in range(CALLERS)
        ))
    assert [ok(r)["rows"] for r in results] == [[[f"item {i + 1}"]] for i in range(CALLERS)]


async def test_read_only_and_statement_timeout_hold_per_transaction_behind_the_pooler(items: str, tmp_path: Any) -> None:
    backend = Backend("postgres", bouncer_url(), "postgres", tmp_path)
    async with backend.client(allowed_tables=items, prepared_statements="off", statement_timeout_ms=300,
                              allowed_functions="pg_sleep,current_setting",
                              check_privileges=False) as client:
        slow = await client.call_tool("execute_query", {"query": "SELECT pg_sleep(3)"})
        assert slow.is_error and slow.structured_content["error"]["code"] == "TIMEOUT", slow.content
        setting = await client.call_tool("execute_query", {
            "query": "SELECT current_setting('transaction_read_only') AS ro, current_setting('statement_timeout') AS t",
        })
        assert ok(setting)["rows"] == [["on", "300ms"]]


async def test_control_asyncpg_with_its_statement_cache_breaks_behind_this_pooler() -> None:
    """The fixture is a real transaction pooler: what sqlgate avoids does fail here."""
    port = cloud_servers.pgbouncer()
    database = make_url(server_url("postgres")).database

    async def worker(i: int) -> str | None:
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database=database)
        try:
            for j in range(10):
                await conn.fetchval(f"SELECT $1::int + {j % 3}", i)
        except asyncpg.PostgresError as exc:
            return str(exc)
        finally:
            await conn.close()
        return None

    failures = [f for f in await asyncio.gather(*(worker(i) for i in range(CALLERS))) if f]
    assert failures and any("prepared statement" in f for f in failures), failures[:3]


@pytest.mark.parametrize(("url", "pooled"), [
    ("postgresql://u:p@ep-cool-name-123456-pooler.eu-central-1.aws.neon.tech/neondb?sslmode=require", True),
    ("postgresql://u:p@ep-cool-name-123456.eu-central-1.aws.neon.tech/neondb?sslmode=require", False),
    ("postgresql://postgres.abc:p@aws-0-eu-central-1.pooler.supabase.com:6543/postgres", True),
    ("postgresql://postgres.abc:p@aws-0-eu-central-1.pooler.supabase.com:5432/postgres", False),  # session mode
    ("postgresql://u@db.example.com/app?pgbouncer=true", True),
    ("postgresql://u@db.example.com/app?prepared_statements=false", True),
    ("postgresql://postgres.abc:p@aws-0-eu-central-1.pooler.supabase.com:6543/postgres?prepared_statements=true", False),
    ("postgresql://u@localhost/app", False),
])
def test_transaction_poolers_are_detected_from_provider_urls(url: str, pooled: bool) -> None:
    from sqlgate.db import dialects

    driver = dialects.for_url(dialects.check_url(url))
    assert driver.autocommit_reads is not pooled, url
    args, kwargs = create_async_engine_args(url)
    assert (kwargs.get("statement_cache_size") == 0) is pooled, kwargs


def create_async_engine_args(url: str) -> tuple[Any, dict[str, Any]]:
    from sqlalchemy.ext.asyncio import create_async_engine

    from sqlgate.db import dialects

    engine = create_async_engine(dialects.check_url(url))
    return engine.sync_engine.dialect.create_connect_args(engine.url)  # type: ignore[no-any-return]
