"""Sessions against real servers (issue 13): one runtime per process on SSE and Streamable
HTTP, transactions owned by their session and ended with it, on PostgreSQL.

One server subprocess per transport for the whole module (start-up is the slow part).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate.db.engines import async_url
from tests.conftest import Backend, make_backend
from tests.e2e.serving import spawn, terminate
from tests.e2e.test_http import SQLGATE, free_port

pytestmark = pytest.mark.anyio

TOKEN_A = "session-token-a-0123456789abcdef"
TOKEN_B = "session-token-b-0123456789abcdef"
TABLE = f"sess_{secrets.token_hex(3)}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Server:
    transport: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}" + ("/sse" if self.transport == "sse" else "/mcp")

    def client(self, token: str | None = None, **kwargs: Any) -> Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if self.transport == "sse":
            # Generous: the shared test machine can be slow to answer a POST (the default is 5 s).
            return Client(sse_client(self.url, headers=headers, timeout=60), **kwargs)
        http = httpx2.AsyncClient(headers=headers, timeout=30)
        return Client(streamable_http_client(self.url, http_client=http), **kwargs)


def _serve(tmp: Path, transport: str, url: str, *extra: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    log = tmp / f"{transport}-{port}.log"
    args = [
        SQLGATE, "serve", "--transport", transport, "--port", str(port), "--database-url", url,
        "--data-dir", str(tmp), "--mode", "read_write", "--pool-size", "2", "--max-overflow", "0",
        "--log-level", "INFO", *extra,
    ]
    return Server(transport, port, spawn(args, port, log, env=env, wait_s=60), log)


def _stop(server: Server) -> None:
    terminate(server.proc, wait_s=30)


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    backend = make_backend("postgres", tmp_path_factory.mktemp("pgdata"))
    backend.execute(
        f"DROP TABLE IF EXISTS {TABLE}",
        f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
        f"INSERT INTO {TABLE} VALUES (1, 0), (2, 0)",
    )
    return backend


SSE_APP = f"sqlgate_sse_{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def sse(pg: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Its own application_name: other servers of this test process use the same database.
    url = f"{pg.url}?application_name={SSE_APP}"
    server = _serve(tmp_path_factory.mktemp("sse"), "sse", url, "--allowed-tables", TABLE)
    yield server
    _stop(server)


@pytest.fixture(scope="module")
def http(pg: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tokens = tmp_path_factory.mktemp("tokens") / "tokens"
    tokens.write_text(f"{TOKEN_A}\n{TOKEN_B}\n")
    server = _serve(
        tmp_path_factory.mktemp("http"), "streamable-http", pg.url, "--allowed-tables", TABLE,
        "--auth-token-file", str(tokens),
    )
    yield server
    _stop(server)


@asynccontextmanager
async def admin(pg: Backend) -> AsyncIterator[Any]:
    engine = create_async_engine(async_url(pg.url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def sqlgate_connections(pg: Backend) -> int:
    """Connections of the SSE server's pool to the test database (by its application_name)."""
    async with admin(pg) as conn:
        return int((await conn.execute(text(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = :app"
        ), {"app": SSE_APP})).scalar_one())


async def row_is_locked(pg: Backend, row_id: int) -> bool:
    async with admin(pg) as conn:
        await conn.execute(text("SET lock_timeout = '500ms'"))
        try:
            await conn.execute(text(f"SELECT 1 FROM {TABLE} WHERE id = :i FOR UPDATE"), {"i": row_id})
        except Exception:  # noqa: BLE001 - lock_not_available
            return True
        return False


def body(result: Any) -> dict[str, Any]:
    return result.structured_content or json.loads(result.content[0].text)


async def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False


# -- one runtime per process ----------------------------------------------------------------

async def test_twenty_sse_sessions_share_one_runtime(sse: Server, pg: Backend) -> None:
    """20 SSE sessions at once: connections stay within the pool (2), every call is audited
    once, and the runtime (migrations of the audit sink included) was opened once."""
    marker = f"m_{secrets.token_hex(4)}"
    results: list[Any] = []
    all_called, measured = asyncio.Event(), asyncio.Event()

    async def session() -> None:
        # Each session in its own task: all 20 stay open until the connections are counted.
        async with sse.client() as client:
            results.append(await client.call_tool(
                "execute_query", {"query": f"SELECT n AS {marker} FROM {TABLE} WHERE id = 1"}))
            if len(results) == 20:
                all_called.set()
            await measured.wait()

    tasks = [asyncio.create_task(session()) for _ in range(20)]
    try:
        await asyncio.wait_for(all_called.wait(), 120)
        assert not any(r.is_error for r in results), [r.content for r in results if r.is_error][:1]
        assert 1 <= await sqlgate_connections(pg) <= 2  # 1: the count sees this server at all
    finally:
        measured.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    assert not failures, failures[:3]
    # The audit file is beside the data dir's default sink: one row per call.
    import sqlite3

    audit_file = next(sse.log.parent.glob("audit.sqlite3"))
    for _ in range(50):
        with sqlite3.connect(audit_file) as conn:
            count = conn.execute(
                "SELECT COUNT(*) FROM sqlgate_audit WHERE sql_text LIKE ?", (f"%{marker}%",)).fetchone()[0]
        if count >= 20:
            break
        await asyncio.sleep(0.1)
    assert count == 20
    log = sse.log.read_text()
    assert log.count("sqlgate ready") == 1
    assert "already exists" not in log


# -- transactions owned by their session ----------------------------------------------------

async def test_sse_transaction_is_its_sessions_and_ends_with_it(sse: Server, pg: Backend) -> None:
    async with sse.client() as a:
        begun = body(await a.call_tool("transaction_manager", {
            "action": "begin", "operations": [{"query": f"UPDATE {TABLE} SET n = n + 1 WHERE id = 1"}]}))
        txid = begun["transaction_id"]
        async with sse.client() as b:
            stolen = await b.call_tool("transaction_manager", {
                "action": "commit", "transaction_id": txid})
            assert stolen.is_error
            error = body(stolen)["error"]
            assert error["code"] == "INVALID_ARGUMENT" and "unknown transaction" in error["message"]
        assert await row_is_locked(pg, 1)  # still A's, still open
    # A's SSE stream closed: its transaction is rolled back at once (not after the idle limit)
    assert await wait_for(lambda: _unlocked(pg, 1), timeout=5)
    async with admin(pg) as conn:
        assert (await conn.execute(text(f"SELECT n FROM {TABLE} WHERE id = 1"))).scalar_one() == 0


async def _unlocked(pg: Backend, row_id: int) -> bool:
    return not await row_is_locked(pg, row_id)


async def test_http_legacy_session_delete_rolls_back(http: Server, pg: Backend) -> None:
    async with http.client(TOKEN_A, mode="legacy") as a:
        begun = body(await a.call_tool("transaction_manager", {
            "action": "begin", "operations": [{"query": f"UPDATE {TABLE} SET n = n + 1 WHERE id = 2"}]}))
        assert begun.get("transaction_id"), begun
        async with http.client(TOKEN_A, mode="legacy") as b:  # same token, another session
            other = await b.call_tool("transaction_manager", {
                "action": "execute", "transaction_id": begun["transaction_id"],
                "operations": [{"query": f"UPDATE {TABLE} SET n = 99 WHERE id = 2"}]})
            assert other.is_error and "unknown transaction" in body(other)["error"]["message"]
        assert await row_is_locked(pg, 2)
    # Leaving the client ends the session with DELETE: rolled back at once.
    assert await wait_for(lambda: _unlocked(pg, 2), timeout=5)


async def test_stateless_http_transactions_are_bound_to_the_token(http: Server, pg: Backend) -> None:
    async with http.client(TOKEN_A) as a, http.client(TOKEN_B) as b:
        begun = body(await a.call_tool("transaction_manager", {"action": "begin"}))
        txid = begun["transaction_id"]
        other = await b.call_tool("transaction_manager", {"action": "rollback", "transaction_id": txid})
        assert other.is_error and "unknown transaction" in body(other)["error"]["message"]
        mine = await a.call_tool("transaction_manager", {"action": "rollback", "transaction_id": txid})
        assert not mine.is_error, mine.content


# -- protocol: initialization on a legacy SSE session ------------------------------------------

async def test_sse_legacy_session_refuses_calls_before_initialized(sse: Server) -> None:
    base = f"http://127.0.0.1:{sse.port}"
    async with httpx2.AsyncClient(timeout=30) as http, http.stream("GET", sse.url) as stream:
        lines = stream.aiter_lines()

        async def next_event() -> tuple[str, str]:
            event, data = "message", ""
            async for line in lines:
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif not line and data:
                    return event, data
            raise AssertionError("the SSE stream ended")

        kind, endpoint = await next_event()
        assert kind == "endpoint"
        post_url = base + endpoint

        async def send(message: dict[str, Any]) -> None:
            assert (await http.post(post_url, json=message)).status_code == 202

        await send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        assert json.loads((await next_event())[1])["id"] == 1
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "execute_query", "arguments": {"query": f"SELECT n FROM {TABLE} WHERE id = 1"}}}
        await send(call)
        early = json.loads((await next_event())[1])
        assert early["id"] == 2 and early["error"]["code"] == -32600, early
        await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await send({**call, "id": 3})
        served = json.loads((await next_event())[1])
        assert served["id"] == 3 and served["result"]["structuredContent"]["rows"] == [[0]], served
