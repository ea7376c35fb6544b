"""Request-size hygiene (issue 12): bounded error messages, a cap on parameters, and an
HTTP body over the limit answered with a JSON-RPC error the agent can read."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from sqlgate.db.guard import MAX_PARAMETERS
from sqlgate.errors import MAX_ERROR_TEXT
from sqlgate.server.body_limit import ENVELOPE_BYTES
from tests.conftest import Backend, unique


async def test_a_flood_of_unused_parameters_gets_a_short_error(sqlite_backend: Backend) -> None:
    table = unique("params")
    await sqlite_backend.aexecute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    async with sqlite_backend.client(allowed_tables=table) as client:
        many = await client.call_tool(
            "execute_query", {"query": f"SELECT id FROM {table}", "parameters": {f"p{i}": i for i in range(100_000)}})
        some = await client.call_tool(
            "execute_query", {"query": f"SELECT id FROM {table} WHERE id = :id",
                              "parameters": {"id": 1, **{f"unused_{i}": i for i in range(500)}}})
    error = many.structured_content["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert f"{MAX_PARAMETERS:,}" in error["message"]
    assert len(json.dumps(many.structured_content)) < 2 * 1024
    error = some.structured_content["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert "and 480 more" in error["message"]
    assert len(error["message"]) <= MAX_ERROR_TEXT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_oversized_http_request_gets_a_json_rpc_error(sqlite_backend: Backend, tmp_path: Path) -> None:
    port = _free_port()
    payload_limit = 1 << 20
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "SQLGATE_DATA_DIR": str(tmp_path),
        "SQLGATE_DATABASE_URL": sqlite_backend.url, "SQLGATE_TRANSPORT": "streamable-http",
        "SQLGATE_PORT": str(port), "SQLGATE_AUDIT_ENABLED": "false", "SQLGATE_LOG_LEVEL": "WARNING",
        "SQLGATE_BULK_MAX_PAYLOAD_BYTES": str(payload_limit),
    }
    proc = subprocess.Popen([sys.executable, "-m", "sqlgate", "serve"], env=env,  # noqa: S603
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                           "params": {"name": "bulk_insert", "arguments": {"records": ["x" * 100] * 30_000}}})
        assert len(body) > payload_limit + ENVELOPE_BYTES
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        response = httpx2.post(f"http://127.0.0.1:{port}/mcp", content=body, headers=headers, timeout=20)
        answer = response.json()
        assert answer["id"] == 7
        assert answer["error"]["code"] == -32600
        assert f"{payload_limit + ENVELOPE_BYTES:,}" in answer["error"]["message"]
        # the server is still there
        small = httpx2.post(f"http://127.0.0.1:{port}/mcp", headers=headers, timeout=20, content=json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        assert small.status_code == 200, small.text
    finally:
        proc.terminate()
        proc.wait(timeout=15)
