"""sqlgate serve over Streamable HTTP and SSE as a real subprocess: auth, Host protection, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.serving import spawn, terminate

pytestmark = pytest.mark.anyio

SQLGATE = str(Path(sys.executable).parent / "sqlgate")
TOKEN = "test-token-0123456789abcdef"
OTHER_TOKEN = "second-token-abcdef0123456789"
PATHS = {"streamable-http": "/mcp", "sse": "/sse"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    transport: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATHS[self.transport]}"

    def client(self, token: str | None = TOKEN, **kwargs: Any) -> Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if self.transport == "sse":
            return Client(sse_client(self.url, headers=headers), **kwargs)
        http = httpx2.AsyncClient(headers=headers, timeout=30)
        return Client(streamable_http_client(self.url, http_client=http), **kwargs)


def start(tmp: Path, transport: str, *extra: str, env: dict[str, str] | None = None) -> Served:
    port = free_port()
    log = tmp / f"server-{port}.log"
    db = tmp / "http.sqlite3"
    if not db.exists():
        import sqlite3

        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE http_items (id INTEGER PRIMARY KEY, name TEXT)")
            conn.execute("INSERT INTO http_items VALUES (1, 'one'), (2, 'two')")
    args = [
        SQLGATE, "serve", "--transport", transport, "--port", str(port),
        "--database-url", f"sqlite:///{db}", "--data-dir", str(tmp), "--no-audit-enabled", *extra,
    ]
    return Served(transport, port, spawn(args, port, log, env=env), log)


def stop(served: Served) -> None:
    terminate(served.proc)


@pytest.fixture(scope="module", params=["streamable-http", "sse"])
def authed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server requiring a bearer token: one from the env, one from a file. One server per
    transport for the module: the tests using it only send requests, none changes it."""
    tmp_path = tmp_path_factory.mktemp("authed")
    token_file = tmp_path / "tokens"
    token_file.write_text(f"# sqlgate tokens\n{OTHER_TOKEN}\n")
    served = start(
        tmp_path, request.param, "--auth-token-file", str(token_file),
        "--allowed-hosts", "db.example:*", "--allowed-origins", "https://app.example",
        env={"SQLGATE_AUTH_TOKEN": TOKEN},
    )
    yield served
    stop(served)


def raw_request(served: Served, headers: dict[str, str]) -> httpx2.Response:
    with httpx2.Client(timeout=10) as http:
        if served.transport == "sse":
            with http.stream("GET", served.url, headers=headers) as response:
                return response
        return http.post(
            served.url,
            headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                     "MCP-Protocol-Version": "2025-11-25", **headers},
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        )


def test_401_without_or_with_a_wrong_token(authed: Served) -> None:
    missing = raw_request(authed, {})
    assert missing.status_code == 401
    assert "resource_metadata=" in missing.headers["www-authenticate"]
    wrong = raw_request(authed, {"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 401
    assert TOKEN not in authed.log.read_text()
    if authed.transport == "sse":  # the message endpoint is guarded too, not only the stream
        with httpx2.Client(timeout=10) as http:
            post = http.post(f"http://127.0.0.1:{authed.port}/messages/?session_id=0", json={})
        assert post.status_code == 401


def test_foreign_host_header_gets_421(authed: Served) -> None:
    response = raw_request(authed, {"Authorization": f"Bearer {TOKEN}", "Host": "evil.example:80"})
    assert response.status_code == 421
    ok_host = raw_request(authed, {"Authorization": f"Bearer {TOKEN}", "Host": f"localhost:{authed.port}"})
    assert ok_host.status_code not in (401, 421)
    configured = raw_request(authed, {"Authorization": f"Bearer {TOKEN}", "Host": "db.example:443"})
    assert configured.status_code not in (401, 421)  # --allowed-hosts


def test_foreign_origin_gets_403(authed: Served) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert raw_request(authed, {**auth, "Origin": "http://evil.example"}).status_code == 403
    assert raw_request(authed, {**auth, "Origin": "https://app.example"}).status_code not in (401, 403, 421)


async def test_tool_call_with_token(authed: Served) -> None:
    for token in (TOKEN, OTHER_TOKEN):  # env token and file token both work
        async with authed.client(token) as client:
            result = await client.call_tool("execute_query", {"query": "SELECT name FROM http_items ORDER BY id"})
            denied = await client.call_tool("execute_query", {"query": "DELETE FROM http_items WHERE id = 1"})
        assert not result.is_error, result.content
        assert result.structured_content["rows"] == [["one"], ["two"]]
        assert denied.is_error and denied.structured_content["error"]["code"] == "WRITE_NOT_ALLOWED"


async def test_without_token_the_client_cannot_call(authed: Served) -> None:
    with pytest.raises(BaseException):  # noqa: B017, PT011 - the SDK raises its own error types
        async with authed.client(None) as client:
            await client.call_tool("execute_query", {"query": "SELECT 1"})


def test_public_bind_without_auth_is_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SQLGATE_AUTH_TOKEN"}
    done = subprocess.run(
        [SQLGATE, "serve", "--transport", "streamable-http", "--host", "0.0.0.0", "--port", str(free_port()),
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert done.returncode == 2
    assert "without authentication" in done.stderr and "--allow-unauthenticated" in done.stderr


async def test_public_bind_with_allow_unauthenticated_warns(tmp_path: Path) -> None:
    served = start(tmp_path, "streamable-http", "--host", "0.0.0.0", "--allow-unauthenticated")
    try:
        async with served.client(None) as client:
            result = await client.call_tool("execute_query", {"query": "SELECT count(*) FROM http_items"})
        assert result.structured_content["rows"] == [[2]]
        assert "WITHOUT authentication" in served.log.read_text()
    finally:
        stop(served)


def test_weak_token_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [SQLGATE, "serve", "--transport", "streamable-http", "--port", str(free_port()),
         "--data-dir", str(tmp_path), "--auth-token", "short"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2 and "shorter than" in done.stderr


async def test_loopback_without_token_and_stateless(tmp_path: Path) -> None:
    served = start(tmp_path, "streamable-http", "--stateless-http")
    try:
        async with served.client(None, mode="legacy") as client:  # a pre-2026 client: sessions unless stateless
            result = await client.call_tool("execute_query", {"query": "SELECT count(*) AS n FROM http_items"})
        assert result.structured_content["rows"] == [[2]]
        with httpx2.Client(timeout=10) as http:
            init = http.post(
                served.url,
                headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
                json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"}}},
            )
        assert init.status_code == 200
        assert "mcp-session-id" not in init.headers  # stateless: any process can answer any request
    finally:
        stop(served)


SLOW_QUERY = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000) "
    "SELECT count(*) AS n FROM c"
)


async def test_sigterm_lets_the_in_flight_call_finish(tmp_path: Path) -> None:
    served = start(tmp_path, "streamable-http", "--shutdown-timeout-s", "30")
    try:
        async with served.client(None) as client:
            await client.list_tools()  # the client validates results against the cached output schemas
            call = asyncio.create_task(client.call_tool("execute_query", {"query": SLOW_QUERY}))
            await asyncio.sleep(0.5)
            assert not call.done(), "the query finished before SIGTERM: make it slower"
            served.proc.send_signal(signal.SIGTERM)
            result = await asyncio.wait_for(call, 60)
        assert not result.is_error, result.content
        assert result.structured_content["rows"] == [[10000000]]
        assert served.proc.wait(timeout=30) == 0
        log = served.log.read_text()
        assert "pools closed" in log
    finally:
        stop(served)
