"""Fleet throughput: nginx in front of 1, 2 and 3 sqlgate workers (issue 17).

    python bench/bench_fleet.py [--clients 20] [--seconds 10] [--workers 1,2,3]

Each run starts a fresh fleet (tests/e2e/fleet_support.py: deploy/nginx templates rendered
into a temp prefix, workers with ``--worker-id``, one PostgreSQL audit sink) on a scratch
PostgreSQL database, then ``--clients`` stateless MCP clients (protocol 2026-07-28, no
session: nginx spreads them) call ``execute_query`` (a primary-key lookup) in a loop for
``--seconds``. Reported: calls/s and p50/p99 latency as the clients see them; the first row
is one worker called directly (no nginx), for nginx's own cost.

Caveat: on a 2-core machine the workers, nginx, PostgreSQL and the load generator (one
Python process) share the same two cores, so more workers mostly add contention: the
numbers show the fleet's overhead and correctness under load, not how it scales on a
machine with a core per worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from tests.e2e.fleet_support import Fleet  # noqa: E402

from sqlgate.db.engines import async_url  # noqa: E402

ADMIN = os.environ.get("SQLGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def admin(sql: str) -> None:
    engine = create_async_engine(async_url(ADMIN), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def load(url: str, clients: int, seconds: float) -> tuple[int, int, list[float]]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds

    async def one(index: int) -> None:
        nonlocal errors
        http = httpx2.AsyncClient(timeout=30)
        async with Client(streamable_http_client(url, http_client=http)) as client:
            n = 0
            while time.monotonic() < stop_at:
                n += 1
                started = time.perf_counter()
                result = await client.call_tool(
                    "execute_query", {"query": "SELECT id, name FROM bench_items WHERE id = :id",
                                      "parameters": {"id": (index * 7919 + n) % 1000 + 1}})
                latencies.append(time.perf_counter() - started)
                errors += bool(result.is_error)

    await asyncio.gather(*(one(i) for i in range(clients)))
    return len(latencies), errors, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--no-direct", action="store_true", help="skip the 1-worker run without nginx")
    args = parser.parse_args()
    name = f"sqlgate_bench_fleet_{secrets.token_hex(3)}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = f"{ADMIN.rsplit('/', 1)[0]}/{name}"
    engine_url = async_url(url)

    async def seed() -> None:
        engine = create_async_engine(engine_url)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE bench_items (id int PRIMARY KEY, name text)"))
            await conn.execute(text("INSERT INTO bench_items SELECT g, 'item ' || g FROM generate_series(1, 1000) g"))
        await engine.dispose()

    asyncio.run(seed())
    print(f"fleet bench: {args.clients} stateless clients, {args.seconds:g} s per run, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'workers':>11} {'calls':>7} {'calls/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    try:
        runs = [(0, True)] if not args.no_direct else []
        runs += [(int(n), False) for n in args.workers.split(",")]
        for size, direct in runs:
            with tempfile.TemporaryDirectory(prefix="sqlgate-bench-fleet-") as tmp:
                fleet = Fleet(Path(tmp), url, url, size=max(size, 1), extra=("--no-untrusted-data-boundary",))
                fleet.start()
                target = f"http://127.0.0.1:{fleet.worker_ports[0]}/mcp" if direct else fleet.url
                try:
                    asyncio.run(load(target, 2, 1.0))  # warm-up: pools, caches
                    calls, errors, latencies = asyncio.run(load(target, args.clients, args.seconds))
                finally:
                    fleet.stop()
            latencies.sort()
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
            label = "1, no nginx" if direct else str(size)
            print(f"{label:>11} {calls:>7} {calls / args.seconds:>8.1f} {p50:>7.1f} {p99:>7.1f} {errors:>6}", flush=True)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
