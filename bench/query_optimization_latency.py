"""What a query_optimization call costs, per database, on a 100 000-row table.

In-process MCP client, one server per database, the tables of tests/tools/test_optimize.py
(built in a scratch database ``qo_bench`` on each server, or a temp SQLite file). For each
case: p50/p95 of sequential calls. Cases: a point lookup (cheap plan, no suggestion), an
unindexed filter (suggestion + proof: hypopg on PostgreSQL, a rolled-back index build on
SQLite), and the same with analyze=true. Run:

    python bench/query_optimization_latency.py [calls]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mcp import Client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate.db.engines import async_url
from sqlgate.server.app import build_server
from sqlgate.settings import load_settings

sys.path.insert(0, str(Path(__file__).parent.parent))
from tests.conftest import Backend  # noqa: E402
from tests.tools.test_optimize import make_orders  # noqa: E402

CASES = {
    "point lookup": {"query": "SELECT id, status FROM qo_orders WHERE id = :id", "parameters": {"id": 77}},
    "unindexed filter + proof": {"query": "SELECT id FROM qo_orders WHERE email = :e",
                                 "parameters": {"e": "user5@example.com"}},
    "unindexed filter, analyze": {"query": "SELECT id FROM qo_orders WHERE email = :e",
                                  "parameters": {"e": "user5@example.com"}, "analyze": True,
                                  "suggest_indexes": False},
}


async def scratch(kind: str, tmp: str) -> Backend:
    if kind == "sqlite":
        return Backend("sqlite", f"sqlite:///{tmp}/bench.sqlite3", "sqlite", Path(tmp))
    admin = {"postgres": "postgresql://postgres@127.0.0.1:5432/postgres",
             "mysql": "mysql://root@127.0.0.1:3306/test"}[kind]
    engine = create_async_engine(async_url(admin), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        if kind == "postgres":
            await conn.execute(text('DROP DATABASE IF EXISTS "qo_bench" WITH (FORCE)'))
            await conn.execute(text('CREATE DATABASE "qo_bench"'))
        else:
            await conn.execute(text("DROP DATABASE IF EXISTS qo_bench"))
            await conn.execute(text("CREATE DATABASE qo_bench"))
    await engine.dispose()
    return Backend(kind, admin.rsplit("/", 1)[0] + "/qo_bench", kind, Path(tmp))


async def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sqlite", "postgres", "mysql"):
            backend = await scratch(kind, tmp)
            await make_orders(backend, "qo_orders")
            if kind == "postgres":
                await backend.aexecute("CREATE EXTENSION IF NOT EXISTS hypopg")
            settings = load_settings({"database_url": backend.url, "data_dir": tmp, "log_level": "WARNING",
                                      "audit_enabled": False, "allowed_tables": "qo_orders"})
            async with Client(build_server(settings)) as client:
                for name, arguments in CASES.items():
                    for _ in range(3):
                        await client.call_tool("query_optimization", arguments)
                    times = []
                    for _ in range(calls):
                        started = time.perf_counter()
                        result = await client.call_tool("query_optimization", arguments)
                        times.append((time.perf_counter() - started) * 1000)
                        assert not result.is_error, result.content
                    times.sort()
                    print(f"{kind:8} {name:28} p50 {statistics.median(times):7.2f} ms   "
                          f"p95 {times[int(len(times) * 0.95)]:7.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
