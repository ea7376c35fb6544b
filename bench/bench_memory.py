"""Peak RSS of `sqlgate serve` per call: a 1,000-row result and large values.

Each case runs in a fresh stdio `sqlgate serve` subprocess: one small warm-up query,
then the case once; the number is the rise of the process's peak RSS (VmHWM) over the
warm process. Run it on another checkout (``--src DIR``: a ``src`` directory, e.g.
from ``git archive <commit> src | tar -x -C /tmp/before``) to compare before and after.

Cases, per database (skipped when the server is unreachable):
- ``1k rows``: ``SELECT * FROM bench_rows`` — 1,000 rows x 5 columns (~90 bytes a row);
- ``wide rows``: ``SELECT id, body FROM bench_wide`` — N rows of several MB each
  (PostgreSQL 40 x 10 MB, MariaDB 30 x 3 MB, SQLite 10 x 5 MB);
- ``one value``: ``SELECT body FROM bench_wide WHERE id = 1`` — one value of that size.

And ``--burst N``: N concurrent calls of the 1,000-row query on one session, then the
process's RSS (VmRSS) before, at the peak, and after the burst (plus a pause).

Usage: python bench/bench_memory.py [--src DIR] [--only sqlite,postgres,mysql] [--burst 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from mcp import Client, StdioServerParameters
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate.db.engines import async_url

URLS = {
    "sqlite": None,  # a temp file
    "postgres": os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}
WIDE = {"sqlite": (10, 5_000_000), "postgres": (40, 10_000_000), "mysql": (30, 3_000_000)}
FILL_WIDE = {
    "sqlite": "INSERT INTO bench_wide SELECT value, printf('%.*c', {n}, 'x') FROM (WITH RECURSIVE s(value) AS "
              "(SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < {rows}) SELECT value FROM s)",
    "postgres": "INSERT INTO bench_wide SELECT g, repeat(md5(g::text), {n} / 32) FROM generate_series(1, {rows}) g",
    "mysql": "INSERT INTO bench_wide SELECT seq, REPEAT('x', {n}) FROM seq_1_to_{rows}",
}
POINT = "SELECT id, customer_id, status, amount, note FROM bench_rows WHERE id = 7"
CASES = {
    "1k rows": "SELECT id, customer_id, status, amount, note FROM bench_rows ORDER BY id",
    "wide rows": "SELECT id, body FROM bench_wide ORDER BY id",
    "one value": "SELECT body FROM bench_wide WHERE id = 1",
}


async def prepare(url: str, kind: str) -> None:
    engine = create_async_engine(async_url(url))
    rows, size = WIDE[kind]
    async with engine.begin() as conn:
        for table in ("bench_rows", "bench_wide"):
            await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        await conn.execute(text(
            "CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, customer_id INTEGER, status VARCHAR(20), "
            "amount NUMERIC(10,2), note VARCHAR(100))"))
        values = ",".join(f"({i}, {i % 100}, 'paid', {i % 500}.25, 'note number {i} of the bench')"
                          for i in range(1, 1001))
        await conn.execute(text(f"INSERT INTO bench_rows VALUES {values}"))  # noqa: S608 - fixed bench data
        body = "LONGTEXT" if kind == "mysql" else "TEXT"
        await conn.execute(text(f"CREATE TABLE bench_wide (id INTEGER PRIMARY KEY, body {body})"))
        await conn.execute(text(FILL_WIDE[kind].format(n=size, rows=rows)))
    await engine.dispose()


def peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def children() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == os.getpid():
                found.add(int(entry.name))
    return found


async def one_case(kind: str, url: str, sql: str, data_dir: Path, src: str | None) -> tuple[float, str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(data_dir), "SQLGATE_DATABASE_URL": url,
           "SQLGATE_DATA_DIR": str(data_dir), "SQLGATE_ALLOWED_TABLES": "bench_rows,bench_wide",
           "SQLGATE_LOG_LEVEL": "WARNING", "SQLGATE_AUDIT_ENABLED": "false"}
    if src:
        env["PYTHONPATH"] = src
    before = children()
    params = StdioServerParameters(command=sys.executable, args=["-m", "sqlgate", "serve"], env=env)
    async with Client(params) as client:
        pid = max(children() - before)
        await client.call_tool("execute_query", {"query": "SELECT count(*) FROM bench_rows"})
        warm = peak_kb(pid)
        result = await client.call_tool("execute_query", {"query": sql})
        rise = (peak_kb(pid) - warm) / 1024
        content = result.structured_content or {}
        if result.is_error:
            outcome = content.get("error", {}).get("code", "error")
        else:
            outcome = f"{content.get('row_count')} rows, {len(result.content[0].text) / 1024:.0f} KiB text"
            if content.get("truncated_values"):
                outcome += f", {content['truncated_values']} values cut"
    return rise, outcome


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def burst(kind: str, url: str, calls: int, data_dir: Path, src: str | None, sql: str) -> str:
    env = {**{k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "PYTHONMALLOC"))},"PATH": os.environ.get("PATH", ""), "HOME": str(data_dir), "SQLGATE_DATABASE_URL": url,
           "SQLGATE_DATA_DIR": str(data_dir), "SQLGATE_ALLOWED_TABLES": "bench_rows,bench_wide",
           "SQLGATE_LOG_LEVEL": "WARNING", "SQLGATE_AUDIT_ENABLED": "false"}
    if src:
        env["PYTHONPATH"] = src
    before = children()
    params = StdioServerParameters(command=sys.executable, args=["-m", "sqlgate", "serve"], env=env)
    async with Client(params) as client:
        pid = max(children() - before)
        query = {"query": sql}
        await client.call_tool("execute_query", query)
        start = rss_kb(pid)
        await asyncio.gather(*(client.call_tool("execute_query", query) for _ in range(calls)))
        peak = peak_kb(pid)
        await asyncio.sleep(2)
        after = rss_kb(pid)
    return f"RSS {start / 1024:.0f} MB -> peak {peak / 1024:.0f} MB -> {after / 1024:.0f} MB 2 s after"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", default=None, help="the src directory of the checkout to measure")
    parser.add_argument("--only", default="sqlite,postgres,mysql")
    parser.add_argument("--burst", type=int, default=0, help="measure N concurrent 1k-row calls instead")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sqlgate-bench-mem-"))
    URLS["sqlite"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    results = []
    print(f"{'db':<9}{'case':<11}{'peak RSS rise MB':>17}  outcome")
    for kind in opts.only.split(","):
        url = URLS[kind]
        assert url is not None
        try:
            await prepare(url, kind)
        except Exception as exc:  # noqa: BLE001
            print(f"{kind:<9}skipped: {exc.__class__.__name__}: {exc}"[:120])
            continue
        if opts.burst:
            for case in ("point", "1k rows"):
                sql = POINT if case == "point" else CASES[case]
                outcome = await burst(kind, url, opts.burst, tmp, opts.src, sql)
                print(f"{kind:<9}{case:<11}burst of {opts.burst}: {outcome}")
            continue
        for case, sql in CASES.items():
            rise, outcome = await one_case(kind, url, sql, tmp, opts.src)
            results.append({"db": kind, "case": case, "rss_rise_mb": round(rise, 1), "outcome": outcome})
            print(f"{kind:<9}{case:<11}{rise:>17.1f}  {outcome}")
    print(json.dumps(results), file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
