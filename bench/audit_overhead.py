"""What the audit log costs a tool call: the same point query with the audit log on and off.

In-process MCP client (no transport noise) on the demo SQLite database:
sequential calls (p50/p95 per call) and 10 concurrent callers (calls/s). Run:

    python bench/audit_overhead.py [calls]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time

from mcp import Client

from sqlgate.server.app import build_server
from sqlgate.settings import load_settings

QUERY = {"query": "SELECT id, name FROM customers WHERE id = :id", "parameters": {"id": 7}}


async def run(audit_enabled: bool, calls: int, data_dir: str) -> dict[str, float]:
    settings = load_settings({"data_dir": data_dir, "audit_enabled": audit_enabled, "log_level": "WARNING"})
    async with Client(build_server(settings)) as client:
        for _ in range(50):  # warm up
            await client.call_tool("execute_query", QUERY)
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            await client.call_tool("execute_query", QUERY)
            times.append((time.perf_counter() - started) * 1000)

        async def caller(n: int) -> None:
            for _ in range(n):
                await client.call_tool("execute_query", QUERY)

        started = time.perf_counter()
        await asyncio.gather(*(caller(calls // 10) for _ in range(10)))
        rate = (calls // 10 * 10) / (time.perf_counter() - started)
        close_started = time.perf_counter()
    close_ms = (time.perf_counter() - close_started) * 1000
    times.sort()
    return {
        "p50_ms": statistics.median(times),
        "p95_ms": times[int(len(times) * 0.95)],
        "calls_per_s_10_callers": rate,
        "shutdown_ms": close_ms,
    }


async def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as data_dir:
        for round_ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3):
            for enabled in (False, True):
                result = await run(enabled, calls, data_dir)
                print(f"round {round_ + 1} audit {'on ' if enabled else 'off'}: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in result.items()))


if __name__ == "__main__":
    asyncio.run(main())
