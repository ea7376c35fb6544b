"""describe_schema: latency cached vs refreshed, and output size (text vs JSON) on the demo database.

Run: python bench/describe_schema.py [DATABASE_URL]   (default: the demo SQLite database)
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time

from mcp import Client

from sqlgate.server.app import build_server
from sqlgate.settings import load_settings


async def main() -> None:
    values = {"data_dir": tempfile.mkdtemp(prefix="sqlgate-bench-"), "audit_enabled": False, "log_level": "WARNING"}
    if len(sys.argv) > 1:
        values["database_url"] = sys.argv[1]
    async with Client(build_server(load_settings(values))) as client:
        timings: dict[bool, list[float]] = {False: [], True: []}
        for refresh in (True, False) * 20:
            started = time.perf_counter()
            result = await client.call_tool("describe_schema", {"refresh": refresh})
            timings[refresh].append((time.perf_counter() - started) * 1000)
    text = result.content[0].text
    tables = result.structured_content["tables"]
    print(f"tables: {len(tables)}, columns: {sum(len(t['columns']) for t in tables)}")
    for refresh, ms in timings.items():
        print(f"refresh={refresh!s:5}  median {statistics.median(ms):.2f} ms  (n={len(ms)})")
    print(f"text form: {len(text)} chars; structured JSON: {len(json.dumps(result.structured_content))} chars")


if __name__ == "__main__":
    asyncio.run(main())
