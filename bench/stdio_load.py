"""Server CPU per call and calls/s of one `sqlgate serve` over stdio, for A/B work.

    python bench/stdio_load.py postgres 3000        # 3,000 sequential point reads
    python bench/stdio_load.py sqlite 4000 10       # ... from 10 concurrent callers
    Q="SELECT * FROM orders ORDER BY id LIMIT 1000" python bench/stdio_load.py postgres 300   # another query

The databases are the shared peers harness's (`../shared/peers/setup.sh`: the `bench`
database, 100,000-row `orders`). CPU is the server process's own (user + system from
/proc), measured after a warm-up call; compare runs of the same machine and load only.
Set SQLGATE_* variables to try settings (e.g. SQLGATE_AUDIT_ENABLED=false).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sys
import time
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

URLS = {
    "postgres": "postgresql://postgres:postgres@127.0.0.1:5432/bench",
    "mariadb": "mariadb://bench:bench@127.0.0.1:3306/bench",
    "sqlite": f"sqlite:///{Path(os.environ.get('PEERS_DIR', Path.home() / '.cache/sqlgate-peers')) / 'bench.sqlite'}",
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pid() -> int:
    """The newest child of this process: the server stdio_client started."""
    children = [int(p) for p in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()]
    return max(children)


async def main(db: str, calls: int, concurrency: int) -> None:
    env = {**os.environ, "DATABASE_URL": URLS[db], "SQLGATE_ALLOWED_TABLES": "orders",
           "SQLGATE_DATA_DIR": os.environ.get("SQLGATE_DATA_DIR", "/tmp/sqlgate-stdio-load")}
    command = shutil.which("sqlgate") or sys.exit("sqlgate is not on PATH")
    params = StdioServerParameters(command=command, args=["serve"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.call_tool("execute_query", {"query": "SELECT * FROM orders WHERE id = 1"})
        pid = server_pid()

        async def caller(n: int) -> None:
            for _ in range(n):
                k = random.randint(1, 100_000)  # noqa: S311
                query = os.environ.get("Q") or f"SELECT * FROM orders WHERE id = {k}"
                await session.call_tool("execute_query", {"query": query})

        before, started = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(caller(calls // concurrency) for _ in range(concurrency)))
        seconds, cpu = time.perf_counter() - started, cpu_seconds(pid) - before
    done = calls // concurrency * concurrency
    print(f"{db}, {concurrency} concurrent: {done} calls in {seconds:.2f} s = {done / seconds:.0f}/s, "
          f"server CPU {cpu / done * 1000:.3f} ms/call")


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0] if args else "postgres", int(args[1]) if len(args) > 1 else 2000,
                     int(args[2]) if len(args) > 2 else 1))
