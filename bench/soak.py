"""Soak: mixed calls over Streamable HTTP and SSE against PostgreSQL for a few minutes.

Not a test (not in CI). Starts two ``sqlgate serve`` subprocesses on a fresh PostgreSQL
database (one per transport, read_write, audit to the default SQLite file), runs ~10
clients (half per transport) that loop over a mix of calls, and every 10 s prints:
calls and errors by code in the window, p50/p99 latency, each server's RSS and open fds,
and the PostgreSQL connections to the database. Flat RSS, fds and connections after the
warm-up mean no leak. The mix:

  60 % execute_query (point read), 10 % execute_query (aggregate), 10 % transaction_manager
  run (insert + update), 5 % interactive begin/execute/commit, 5 % bulk_insert (20 rows),
  5 % a denied statement (expected WRITE_NOT_ALLOWED... on a read of sqlgate's own table:
  TABLE_NOT_ALLOWED), 5 % health_check.

    python bench/soak.py [--seconds 180] [--clients 10] [--admin postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

SQLGATE = str(Path(sys.executable).parent / "sqlgate")
DB = f"sqlgate_soak_{secrets.token_hex(3)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def admin_sql(admin: str, *statements: str, db: str | None = None) -> list[Any]:
    url = admin.replace("postgresql://", "postgresql+asyncpg://")
    if db:
        url = url.rsplit("/", 1)[0] + "/" + db
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    rows: list[Any] = []
    try:
        async with engine.connect() as conn:
            for sql in statements:
                result = await conn.execute(text(sql))
                rows = list(result.fetchall()) if result.returns_rows else []
    finally:
        await engine.dispose()
    return rows


def serve(transport: str, url: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    data = tmp / transport
    data.mkdir()
    proc = subprocess.Popen(
        [SQLGATE, "serve", "--transport", transport, "--port", str(port), "--database-url", url,
         "--data-dir", str(data), "--mode", "read_write", "--allowed-tables", "soak", "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=(tmp / f"{transport}.log").open("wb"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.2)
    return proc, f"http://127.0.0.1:{port}" + ("/sse" if transport == "sse" else "/mcp")


def client(transport: str, url: str) -> Client:
    if transport == "sse":
        return Client(sse_client(url))
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(timeout=60)))


def code_of(result: Any) -> str:
    if not result.is_error:
        return "ok"
    try:
        body = result.structured_content or json.loads(result.content[0].text)
        return str(body["error"]["code"])
    except Exception:  # noqa: BLE001
        return "UNPARSED_ERROR"


async def one_call(c: Client, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.60:
        r = await c.call_tool("execute_query", {"query": "SELECT id, n, note FROM soak WHERE id = :id",
                                                 "parameters": {"id": rng.randint(1, 1000)}})
    elif roll < 0.70:
        r = await c.call_tool("execute_query", {"query": "SELECT count(*) AS c, sum(n) AS s FROM soak"})
    elif roll < 0.80:
        key = rng.randint(1, 1000)
        r = await c.call_tool("transaction_manager", {"operations": [
            {"query": "INSERT INTO soak (note, n) VALUES (:note, 1)", "parameters": {"note": "tx"}},
            {"query": "UPDATE soak SET n = n + 1 WHERE id = :id", "parameters": {"id": key}}]})
    elif roll < 0.85:
        r = await c.call_tool("transaction_manager", {"action": "begin"})
        if not r.is_error:
            txid = r.structured_content["transaction_id"]
            await c.call_tool("transaction_manager", {"action": "execute", "transaction_id": txid, "operations": [
                {"query": "UPDATE soak SET n = n + 1 WHERE id = :id", "parameters": {"id": rng.randint(1, 1000)}}]})
            r = await c.call_tool("transaction_manager", {"action": "commit", "transaction_id": txid})
    elif roll < 0.90:
        r = await c.call_tool("bulk_insert", {"table": "soak", "records": [
            {"note": f"bulk{i}", "n": i} for i in range(20)]})
    elif roll < 0.95:
        r = await c.call_tool("execute_query", {"query": "SELECT * FROM pg_shadow"})
    else:
        r = await c.call_tool("health_check", {})
    return code_of(r)


class Stats:
    def __init__(self) -> None:
        self.window: list[float] = []
        self.codes: collections.Counter[str] = collections.Counter()
        self.total_calls = 0
        self.total_codes: collections.Counter[str] = collections.Counter()
        self.all_latencies: list[float] = []

    def add(self, seconds: float, code: str) -> None:
        self.window.append(seconds)
        self.codes[code] += 1
        self.total_calls += 1
        self.total_codes[code] += 1
        self.all_latencies.append(seconds)


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def proc_facts(pid: int) -> tuple[int, int]:
    rss_kb = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    return rss_kb // 1024, len(os.listdir(f"/proc/{pid}/fd"))


async def worker(transport: str, url: str, stats: Stats, stop: asyncio.Event, seed: int) -> None:
    rng = random.Random(seed)
    async with client(transport, url) as c:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                code = await one_call(c, rng)
            except Exception as exc:  # noqa: BLE001 - counted, the loop goes on
                code = f"EXCEPTION:{type(exc).__name__}"
            stats.add(time.perf_counter() - started, code)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    await admin_sql(args.admin, f'CREATE DATABASE "{DB}"')
    url = args.admin.rsplit("/", 1)[0] + "/" + DB
    await admin_sql(args.admin, "CREATE TABLE soak (id SERIAL PRIMARY KEY, note TEXT, n INTEGER NOT NULL DEFAULT 0)",
                    "INSERT INTO soak (note, n) SELECT 'seed', g FROM generate_series(1, 1000) g", db=DB)
    tmp = Path(tempfile.mkdtemp(prefix="sqlgate-soak-"))
    servers = {t: serve(t, url, tmp) for t in ("streamable-http", "sse")}
    stats = Stats()
    stop = asyncio.Event()
    workers = [
        asyncio.create_task(worker(t, servers[t][1], stats, stop, seed))
        for seed, t in enumerate(["streamable-http", "sse"] * (args.clients // 2))
    ]
    print(f"soak: {args.clients} clients, {args.seconds:g} s, database {DB}; load: {os.getloadavg()}", flush=True)
    print("   t  calls  p50ms  p99ms  errors-by-code                         http:rss/fds  sse:rss/fds  pg-conns")
    started = time.monotonic()
    try:
        while time.monotonic() - started < args.seconds:
            await asyncio.sleep(10)
            window, codes = stats.window, stats.codes
            stats.window, stats.codes = [], collections.Counter()
            errors = {k: v for k, v in codes.items() if k != "ok"}
            facts = {t: proc_facts(p.pid) for t, (p, _) in servers.items()}
            conns = (await admin_sql(args.admin, f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{DB}'"))[0][0]
            print(f"{time.monotonic() - started:4.0f} {len(window):6d} {pct(window, .5):6.1f} {pct(window, .99):6.1f}  "
                  f"{json.dumps(errors):38s} {facts['streamable-http'][0]:5d}/{facts['streamable-http'][1]:<4d}"
                  f"  {facts['sse'][0]:5d}/{facts['sse'][1]:<4d} {conns:6d}", flush=True)
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
        for proc, _ in servers.values():
            proc.wait(timeout=60)
        await admin_sql(args.admin, f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    elapsed = time.monotonic() - started
    print(f"total: {stats.total_calls} calls in {elapsed:.0f} s ({stats.total_calls / elapsed:.1f}/s), "
          f"p50 {pct(stats.all_latencies, .5):.1f} ms, p99 {pct(stats.all_latencies, .99):.1f} ms, "
          f"codes {dict(stats.total_codes)}; exit codes {[p.returncode for p, _ in servers.values()]}")


if __name__ == "__main__":
    asyncio.run(main())
