"""execute_query latency and throughput through a real MCP client (in-memory and stdio).

Measures, per database, on a 100,000-row `bench_orders` table (5 columns):
- p50 / p95 of a point query (`WHERE id = :id`), sequential calls;
- calls/s with 10 concurrent callers on one client session;
- text bytes per row of a 1,000-row result (what the model reads).

Usage: python bench/bench_query.py [--n 2000] [--stdio] [--only sqlite,postgres,mysql]
Needs the local PostgreSQL/MariaDB servers for those rows (skipped when unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mcp import Client, StdioServerParameters
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate.db.engines import async_url
from sqlgate.server.app import build_server
from sqlgate.settings import load_settings

URLS = {
    "sqlite": None,  # filled with a temp file
    "postgres": os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}
ROWS = 100_000


async def prepare(url: str, kind: str) -> None:
    engine = create_async_engine(async_url(url))
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS bench_orders"))
        await conn.execute(text(
            "CREATE TABLE bench_orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, "
            "status VARCHAR(20) NOT NULL, amount NUMERIC(10,2) NOT NULL, note VARCHAR(100))"
        ))
        if kind == "postgres":
            await conn.execute(text(
                "INSERT INTO bench_orders SELECT g, g % 1000, 'paid', (g % 500) + 0.25, 'note ' || g "
                f"FROM generate_series(1, {ROWS}) g"
            ))
        else:
            batch = 5000
            for start in range(1, ROWS + 1, batch):
                values = ",".join(
                    f"({i}, {i % 1000}, 'paid', {(i % 500) + 0.25}, 'note {i}')"
                    for i in range(start, min(start + batch, ROWS + 1))
                )
                await conn.execute(text(f"INSERT INTO bench_orders VALUES {values}"))
    await engine.dispose()


async def measure(client: Client, n: int) -> dict[str, float]:
    args = {"query": "SELECT id, customer_id, status, amount, note FROM bench_orders WHERE id = :id"}
    for i in range(50):  # warm-up: pools, caches
        await client.call_tool("execute_query", {**args, "parameters": {"id": i + 1}})
    times = []
    for i in range(n):
        started = time.perf_counter()
        result = await client.call_tool("execute_query", {**args, "parameters": {"id": (i * 37) % ROWS + 1}})
        times.append(time.perf_counter() - started)
        assert not result.is_error, result.content
    times.sort()

    async def caller(k: int) -> None:
        for i in range(n // 10):
            await client.call_tool("execute_query", {**args, "parameters": {"id": (i * 13 + k) % ROWS + 1}})

    started = time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(10)))
    concurrent = (n // 10) * 10 / (time.perf_counter() - started)

    big = await client.call_tool(
        "execute_query", {"query": "SELECT id, customer_id, status, amount, note FROM bench_orders ORDER BY id",
                          "max_rows": 1000}
    )
    text_bytes = len(big.content[0].text.encode())
    return {
        "p50_ms": statistics.median(times) * 1000,
        "p95_ms": times[int(len(times) * 0.95)] * 1000,
        "calls_per_s_10": concurrent,
        "bytes_per_row": text_bytes / max(big.structured_content["row_count"], 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--stdio", action="store_true", help="also measure over a stdio subprocess")
    parser.add_argument("--only", default="sqlite,postgres,mysql")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sqlgate-bench-"))
    URLS["sqlite"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    print(f"{'db':<9}{'transport':<11}{'p50 ms':>8}{'p95 ms':>8}{'calls/s x10':>13}{'bytes/row':>11}")
    for kind in opts.only.split(","):
        url = URLS[kind]
        try:
            await prepare(url, kind)
        except Exception as exc:  # noqa: BLE001
            print(f"{kind:<9}skipped: {exc.__class__.__name__}: {exc}"[:120])
            continue
        values = {"database_url": url, "data_dir": str(tmp), "allowed_tables": "bench_orders",
                  "log_level": "WARNING", "audit_enabled": False}
        targets = [("memory", build_server(load_settings(values)))]
        if opts.stdio:
            env = {"PATH": os.environ.get("PATH", ""), "SQLGATE_DATABASE_URL": url, "SQLGATE_DATA_DIR": str(tmp),
                   "SQLGATE_ALLOWED_TABLES": "bench_orders", "SQLGATE_LOG_LEVEL": "WARNING",
                   "SQLGATE_AUDIT_ENABLED": "false"}
            targets.append(("stdio", StdioServerParameters(command=sys.executable, args=["-m", "sqlgate"], env=env)))
        for transport, target in targets:
            async with Client(target) as client:
                r = await measure(client, opts.n)
            print(f"{kind:<9}{transport:<11}{r['p50_ms']:>8.2f}{r['p95_ms']:>8.2f}"
                  f"{r['calls_per_s_10']:>13.0f}{r['bytes_per_row']:>11.1f}")


if __name__ == "__main__":
    asyncio.run(main())
