"""bulk_insert throughput: sqlgate vs the raw driver, 100,000 rows of a five-column table.

Run: ``python bench/bench_bulk_insert.py [--rows 100000] [--only sqlite,postgres,mysql]``.
PostgreSQL and MariaDB come from ``SQLGATE_TEST_POSTGRES_URL`` / ``SQLGATE_TEST_MYSQL_URL``
(the test defaults); a scratch database ``sqlgate_bench_bulk`` is created and dropped.

Each line is rows/s of one way to insert the same rows into an empty table:

* raw: the driver alone with native Python values built before the clock starts
  (asyncpg ``copy_records_to_table`` and ``executemany``, aiomysql ``executemany``,
  stdlib ``sqlite3`` ``executemany``), one transaction; for PostgreSQL also COPY from the
  same JSON records sqlgate gets, the conversion to ``Decimal``/``date`` timed;
* sqlgate tool: ``rows_per_second`` as bulk_insert reports it (validation, reflection
  cache, safety check, type conversion, batches of 1000, one transaction);
* sqlgate via MCP: the whole call through an in-memory MCP client, records as JSON
  (strings for dates and numerics, as an agent sends them), timed around call_tool.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import decimal
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate.db.engines import async_url

PG_ADMIN = os.environ.get("SQLGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN = os.environ.get("SQLGATE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
SCRATCH = "sqlgate_bench_bulk"
TABLE = "bench_bulk"
DDL = {
    "sqlite": f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, name VARCHAR(50), qty INTEGER, "
    "price NUMERIC(10,2), created DATE)",
    "postgres": f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, name VARCHAR(50), qty INTEGER, "
    "price NUMERIC(10,2), created DATE)",
    "mysql": f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, name VARCHAR(50), qty INTEGER, "
    "price DECIMAL(10,2), created DATE)",
}


def json_records(n: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "name": f"item {i}", "qty": i % 100, "price": f"{i % 1000}.99",
         "created": f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}"}
        for i in range(n)
    ]


def native_rows(n: int) -> list[tuple[Any, ...]]:
    return [
        (i, f"item {i}", i % 100, decimal.Decimal(f"{i % 1000}.99"), dt.date(2024, i % 12 + 1, i % 28 + 1))
        for i in range(n)
    ]


async def admin(url: str, *statements: str) -> None:
    engine = create_async_engine(async_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for sql in statements:
                await conn.execute(text(sql))
    finally:
        await engine.dispose()


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else float("inf")


async def via_sqlgate(kind: str, url: str, n: int, data_dir: Path) -> tuple[float, float]:
    from mcp import Client

    from sqlgate.server.app import build_server
    from sqlgate.settings import load_settings

    settings = load_settings({
        "database_url": url, "mode": "read_write", "allowed_tables": [TABLE], "data_dir": str(data_dir),
        "audit_enabled": False, "log_level": "WARNING",
    })
    records = json_records(n)
    async with Client(build_server(settings)) as client:
        started = time.perf_counter()
        result = await client.call_tool("bulk_insert", {"table": TABLE, "records": records})
        elapsed = time.perf_counter() - started
    if result.is_error:
        raise SystemExit(f"{kind}: bulk_insert failed: {result.structured_content}")
    assert result.structured_content["inserted"] == n
    return float(result.structured_content["rows_per_second"]), rate(n, elapsed)


async def raw_postgres(url: str, n: int, mode: str) -> float:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql://", "postgres://", 1))
    records = json_records(n)
    rows = native_rows(n)
    try:
        started = time.perf_counter()
        if mode == "copy-json":  # the same JSON input sqlgate gets, converted by the caller
            mode = "copy"
            rows = [
                (r["id"], r["name"], r["qty"], decimal.Decimal(r["price"]), dt.date.fromisoformat(r["created"]))
                for r in records
            ]
        async with conn.transaction():
            if mode == "copy":
                await conn.copy_records_to_table(TABLE, records=rows, columns=["id", "name", "qty", "price", "created"])
            else:
                await conn.executemany(
                    f"INSERT INTO {TABLE} (id, name, qty, price, created) VALUES ($1, $2, $3, $4, $5)", rows
                )
        return rate(n, time.perf_counter() - started)
    finally:
        await conn.close()


async def raw_mysql(url: str, n: int) -> float:
    import aiomysql
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    conn = await aiomysql.connect(
        host=parsed.host, port=parsed.port or 3306, user=parsed.username, password=parsed.password or "",
        db=parsed.database,
    )
    rows = native_rows(n)
    try:
        started = time.perf_counter()
        async with conn.cursor() as cur:
            await cur.execute("START TRANSACTION")
            await cur.executemany(
                f"INSERT INTO {TABLE} (id, name, qty, price, created) VALUES (%s, %s, %s, %s, %s)", rows
            )
        await conn.commit()
        return rate(n, time.perf_counter() - started)
    finally:
        conn.close()


def raw_sqlite(path: Path, n: int) -> float:
    rows = [(i, name, qty, str(price), created.isoformat()) for i, name, qty, price, created in native_rows(n)]
    conn = sqlite3.connect(path)
    try:
        started = time.perf_counter()
        with conn:
            conn.executemany(f"INSERT INTO {TABLE} (id, name, qty, price, created) VALUES (?, ?, ?, ?, ?)", rows)
        return rate(n, time.perf_counter() - started)
    finally:
        conn.close()


async def bench(kind: str, n: int, data_dir: Path, repeat: int) -> list[tuple[str, float]]:
    results: list[tuple[str, float]] = []
    if kind == "sqlite":
        path = data_dir / "bench.sqlite3"
        url = f"sqlite:///{path}"
    else:
        base = PG_ADMIN if kind == "postgres" else MYSQL_ADMIN
        quote = '"' if kind == "postgres" else "`"
        await admin(base, f"DROP DATABASE IF EXISTS {quote}{SCRATCH}{quote}", f"CREATE DATABASE {quote}{SCRATCH}{quote}")
        url = base.rsplit("/", 1)[0] + "/" + SCRATCH

    async def fresh() -> None:
        await admin(url, f"DROP TABLE IF EXISTS {TABLE}", DDL[kind])

    def best(name: str, value: float) -> None:
        for i, (known, old) in enumerate(results):
            if known == name:
                results[i] = (name, max(old, value))
                return
        results.append((name, value))

    try:
        for _ in range(repeat):
            if kind == "postgres":
                for mode, name in (
                    ("copy", "copy_records_to_table"),
                    ("executemany", "executemany"),
                    ("copy-json", "copy_records_to_table, JSON input converted (timed)"),
                ):
                    await fresh()
                    best(f"raw asyncpg {name}", await raw_postgres(url, n, mode))
            elif kind == "mysql":
                await fresh()
                best("raw aiomysql executemany", await raw_mysql(url, n))
            else:
                await fresh()
                best("raw sqlite3 executemany", raw_sqlite(path, n))
            await fresh()
            tool_rate, mcp_rate = await via_sqlgate(kind, url, n, data_dir)
            best("sqlgate bulk_insert (tool's rows_per_second)", tool_rate)
            best("sqlgate bulk_insert via MCP client (end to end)", mcp_rate)
    finally:
        if kind != "sqlite":
            await admin(base, f"DROP DATABASE IF EXISTS {quote}{SCRATCH}{quote}")
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--only", default="sqlite,postgres,mysql")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (the machine is shared)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sqlgate-bench-") as tmp:
        for kind in args.only.split(","):
            results = await bench(kind, args.rows, Path(tmp), args.repeat)
            best_raw = max(r for name, r in results if name.startswith("raw"))
            sys.stdout.write(f"\n{kind}: {args.rows:,} rows, 5 columns, best of {args.repeat}\n")
            for name, value in results:
                sys.stdout.write(f"  {name:<62} {value:>12,.0f} rows/s  {value / best_raw:6.0%} of best raw\n")


if __name__ == "__main__":
    asyncio.run(main())
