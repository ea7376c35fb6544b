"""`sqlgate serve` with nothing configured: the demo database is created on first start
and queried over a real stdio subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def params(data_dir: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "sqlgate", "serve"],
        env={"SQLGATE_DATA_DIR": str(data_dir), "PATH": os.environ.get("PATH", ""), "HOME": str(data_dir)},
    )


async def test_demo_database_created_on_first_start_and_queried(tmp_path: Path) -> None:
    demo = tmp_path / "demo.sqlite3"
    assert not demo.exists()
    async with Client(params(tmp_path)) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "execute_query" in tools
        counts = await client.call_tool(
            "execute_query",
            {"query": "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders), "
                      "(SELECT count(*) FROM products), (SELECT count(*) FROM order_items)"},
        )
        write = await client.call_tool("execute_query", {"query": "DELETE FROM orders WHERE id = 1"})
    assert demo.exists()
    assert not counts.is_error, counts.content
    customers, orders, products, items = counts.structured_content["rows"][0]
    assert (customers, orders, products) == (50, 200, 12)
    assert items > orders
    assert write.is_error and write.structured_content["error"]["code"] == "WRITE_NOT_ALLOWED"


async def test_demo_data_is_deterministic_across_starts(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    query = {"query": "SELECT sum(quantity * unit_price) FROM order_items", "fetch_mode": "scalar"}
    values = []
    for data_dir in (first, second):
        data_dir.mkdir()
        async with Client(params(data_dir)) as client:
            values.append((await client.call_tool("execute_query", query)).structured_content["value"])
    assert values[0] == values[1] and values[0] > 0


def test_serve_in_a_terminal_answers_too(tmp_path: Path) -> None:
    """Run by hand in a terminal (stdin a TTY, not a pipe), `sqlgate serve` still reads
    and answers: the pipe-only event loop (uvloop) is not used there."""
    import json
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the server, on the terminal
        os.environ.update({"SQLGATE_DATA_DIR": str(tmp_path), "HOME": str(tmp_path), "SQLGATE_LOG_LEVEL": "INFO"})
        os.execv(sys.executable, [sys.executable, "-m", "sqlgate", "serve"])

    def read_until(marker: bytes, seen: bytes) -> bytes:
        end = time.monotonic() + 30
        while marker not in seen and time.monotonic() < end:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    break
        assert marker in seen, seen[-500:]
        return seen

    try:
        seen = read_until(b"sqlgate ready", b"")  # typed by a person: after the server is up
        hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "tty", "version": "1"}}}
        os.write(fd, (json.dumps(hello) + "\n").encode())
        read_until(b'"serverInfo"', seen)
    finally:
        os.kill(pid, 15)
        os.waitpid(pid, 0)
        os.close(fd)
