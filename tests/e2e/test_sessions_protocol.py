"""Protocol hygiene and SQLite honesty through real servers (issue 13).

* parameter values no database takes, sent on the wire (``1e400`` decodes to infinity,
  ``10**30``): INVALID_ARGUMENT naming the parameter, over stdio and Streamable HTTP;
* a legacy (handshake) HTTP session serves no tool call before ``notifications/initialized``;
* a call cut off at shutdown gets a JSON-RPC error, not HTTP 500;
* SQLite read_only opens the file ``mode=ro`` and never creates it; read_write on a
  read-only file is reported by health_check.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import Backend
from tests.db.test_boundary_faults import SLEEP_FUNCTION
from tests.e2e.test_sessions import Server, _serve, _stop

pytestmark = pytest.mark.anyio

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
LEGACY = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
          "MCP-Protocol-Version": "2025-11-25"}
MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def call_line(request_id: int, arguments: str) -> str:
    """A tools/call line with ``arguments`` as raw JSON text (so 1e400 travels as written)."""
    head = f'{{"jsonrpc":"2.0","id":{request_id},"method":"tools/call","params":'
    return head + '{"name":"execute_query","arguments":' + arguments + "}}"


def test_stdio_wire_values_are_invalid_argument(tmp_path: Path) -> None:
    db = tmp_path / "wire.sqlite3"
    sqlite3.connect(db).close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sqlgate", "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{db}", "SQLGATE_DATA_DIR": str(tmp_path),
             "SQLGATE_AUDIT_ENABLED": "false"},
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        lines = [json.dumps(INIT), json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                 call_line(2, '{"query":"SELECT :p AS p","parameters":{"p":1e400}}'),
                 call_line(3, '{"query":"SELECT :p AS p","parameters":{"p":1000000000000000000000000000000}}'),
                 call_line(4, '{"query":"SELECT :p AS p","parameters":{"p":-1e400}}')]
        proc.stdin.write("".join(line + "\n" for line in lines))
        proc.stdin.flush()
        answers: dict[Any, Any] = {}
        while not {2, 3, 4} <= set(answers):
            line = proc.stdout.readline()
            assert line, "the server closed stdout"
            answer = json.loads(line)
            answers[answer.get("id")] = answer
        proc.stdin.close()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    for request_id, expected in ((2, "finite number"), (3, "64-bit integer"), (4, "finite number")):
        result = answers[request_id]["result"]
        assert result["isError"], result
        error = result["structuredContent"]["error"]
        assert error["code"] == "INVALID_ARGUMENT" and ":p" in error["message"] and expected in error["message"]


@pytest.fixture(scope="module")
def http_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("proto")
    db = tmp / "proto.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    server = _serve(tmp, "streamable-http", f"sqlite:///{db}", "--no-audit-enabled")
    yield server
    _stop(server)


def post(server: Server, body: dict[str, Any] | str, headers: dict[str, str]) -> httpx2.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    return httpx2.post(server.url, headers=headers, content=content, timeout=30)


def sse_json(response: httpx2.Response) -> dict[str, Any]:
    text = response.text
    if text.lstrip().startswith("{"):
        return dict(json.loads(text))
    data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    return dict(json.loads(data[-1]))


def test_http_wire_values_are_invalid_argument(http_sqlite: Server) -> None:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "execute_query"}
    for value, expected in (("1e400", "finite number"), ('"\\ud800"', "valid Unicode"),
                            ("1000000000000000000000000000000", "64-bit integer")):
        body = ('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"execute_query",'
                '"arguments":{"query":"SELECT :p AS p","parameters":{"p":' + value + '}},"_meta":'
                + json.dumps(MODERN_META) + "}}")
        answer = sse_json(post(http_sqlite, body, headers))
        error = answer["result"]["structuredContent"]["error"]
        assert error["code"] == "INVALID_ARGUMENT" and expected in error["message"], (value, error)


def test_legacy_http_session_refuses_calls_before_initialized(http_sqlite: Server) -> None:
    opened = post(http_sqlite, INIT, LEGACY)
    session = opened.headers["mcp-session-id"]
    headers = {**LEGACY, "mcp-session-id": session}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "execute_query", "arguments": {"query": "SELECT 1 AS one"}}}
    early = sse_json(post(http_sqlite, call, headers))
    assert early["error"]["code"] == -32600 and "not initialized" in early["error"]["message"]
    assert post(http_sqlite, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers).status_code == 202
    served = sse_json(post(http_sqlite, {**call, "id": 3}, headers))
    assert served["result"]["structuredContent"]["rows"] == [[1]]
    httpx2.delete(http_sqlite.url, headers=headers, timeout=10)


def test_call_cut_off_at_shutdown_gets_a_jsonrpc_error(postgres_backend: Backend, tmp_path: Path) -> None:
    server = _serve(tmp_path, "streamable-http", postgres_backend.url, "--no-audit-enabled",
                    "--allowed-functions", SLEEP_FUNCTION["postgres"], "--shutdown-timeout-s", "1")
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "execute_query"}
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "execute_query", "arguments": {"query": "SELECT pg_sleep(30) AS s"}, "_meta": MODERN_META}}
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(post(server, call, headers)))
    try:
        thread.start()
        time.sleep(1.5)
        server.proc.send_signal(signal.SIGTERM)
        thread.join(timeout=30)
        server.proc.wait(timeout=30)
    finally:
        _stop(server)
    response = got[0]
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == 5 and answer["error"]["code"] == -32000 and "shutting down" in answer["error"]["message"]


# -- SQLite honesty ---------------------------------------------------------------------


async def test_read_only_never_creates_a_missing_file(tmp_path: Path) -> None:
    from sqlgate.server.app import build_server
    from sqlgate.settings import load_settings

    missing = tmp_path / "typo" / ".." / "mistyped.sqlite3"
    settings = load_settings({"database_url": f"sqlite:///{missing}", "data_dir": str(tmp_path),
                              "audit_enabled": False})
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("execute_query", {"query": "SELECT 1 AS one"})
        health = (await client.call_tool("health_check", {})).structured_content
    error = result.structured_content["error"]
    assert error["code"] == "DB_UNAVAILABLE"
    assert str(missing.resolve()) in error["message"]  # the absolute path, resolved
    assert not missing.resolve().exists()
    assert health["status"] != "healthy"


async def test_read_only_file_refuses_writes_in_sqlite_itself(tmp_path: Path) -> None:
    """mode=ro: even with query_only lifted (the health round trip does that), the file
    cannot change."""
    from sqlgate.db.engines import open_databases
    from sqlgate.settings import load_settings

    path = tmp_path / "ro.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (a INTEGER)")
    databases = await open_databases(load_settings({"database_url": f"sqlite:///{path}", "data_dir": str(tmp_path)}))
    try:
        database = databases.get(None)
        assert "mode=ro" in str(database.engine.url)
        async with database.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA query_only = OFF")
            with pytest.raises(Exception, match="readonly"):
                await conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    finally:
        await databases.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the server as another user")
async def test_read_write_on_a_read_only_file_is_degraded() -> None:
    """The server runs as an unprivileged user (root writes anywhere): the file is 0444."""
    import shutil
    import tempfile

    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
    probe = subprocess.run([*nobody, "-c", "import sqlgate"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:  # e.g. a virtualenv inside a root-only directory
        pytest.skip(f"user nobody cannot import sqlgate from {sys.executable}: {probe.stderr.strip()[-200:]}")
    tmp_path = Path(tempfile.mkdtemp(prefix="sqlgate-ro-", dir="/tmp"))  # pytest's tmp is root-only
    tmp_path.chmod(0o777)
    path = tmp_path / "locked.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (a INTEGER)")
    path.chmod(0o444)
    params = StdioServerParameters(
        command=nobody[0],
        args=[*nobody[1:], "-m", "sqlgate", "serve",
              "--database-url", f"sqlite:///{path}", "--mode", "read_write", "--data-dir", str(tmp_path),
              "--no-audit-enabled", "--log-level", "WARNING"],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )
    try:
        async with Client(params) as client:
            plain = (await client.call_tool("health_check", {})).structured_content
            probed = (await client.call_tool("health_check", {"test_operations": True})).structured_content
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert plain["status"] == "degraded"
    assert any("read-only" in reason for reason in plain["reasons"]), plain["reasons"]
    ops = probed["databases"][0]["test_operations"]
    assert ops["ok"] is False and "readonly" in ops["error"], ops
