"""SIGTERM to a `sqlgate serve` (stdio) subprocess with calls in flight: their statements
stop in the database within 2 s (the handlers are cancelled; the boundary cancels in the
database before the pools close)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import Backend
from tests.db.test_boundary_faults import SLEEP, SLEEP_FUNCTION, gone_within, running

KINDS = ("postgres", "mysql")


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.getfixturevalue(f"{request.param}_backend")
    return backend


def serve(server: Backend, data_dir: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "sqlgate", "serve"],
        env={
            "PATH": os.environ.get("PATH", ""), "HOME": str(data_dir), "SQLGATE_DATA_DIR": str(data_dir),
            "SQLGATE_DATABASE_URL": server.url, "SQLGATE_ALLOWED_FUNCTIONS": SLEEP_FUNCTION[server.name],
            "SQLGATE_AUDIT_ENABLED": "false", "SQLGATE_LOG_LEVEL": "WARNING",
        },
    )


def server_pids() -> list[int]:
    """Our child processes running sqlgate (the stdio client spawns it directly)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"sqlgate" in cmdline:
            found.append(int(entry.name))
    return found


async def test_sigterm_with_calls_in_flight_stops_their_statements(server: Backend, tmp_path: Path) -> None:
    before = set(server_pids())
    async with Client(serve(server, tmp_path)) as client:
        [pid] = set(server_pids()) - before
        calls = [
            asyncio.create_task(client.call_tool("execute_query", {"query": SLEEP[server.name].format(s=s)}))
            for s in (20, 21)
        ]
        for _ in range(100):
            if await running(server) >= 2:
                break
            await asyncio.sleep(0.05)
        assert await running(server) == 2
        os.kill(pid, signal.SIGTERM)
        assert await gone_within(server, 2.0)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 0)
