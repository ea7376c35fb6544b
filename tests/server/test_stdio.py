"""The lean stdio transport: mcp's server session over asyncio pipes; a malformed line is
answered with a JSON-RPC error and the session keeps serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Backend

INIT = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def session(env: dict[str, str], after_init: list[str], until_id: int) -> list[dict[str, object]]:
    """Initialize, then send ``after_init`` and read answers until ``until_id`` is answered."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sqlgate", "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(INIT) + "\n")
        proc.stdin.flush()
        answers = [json.loads(proc.stdout.readline())]
        proc.stdin.write("".join(line + "\n" for line in after_init))
        proc.stdin.flush()
        while answers[-1].get("id") != until_id:
            line = proc.stdout.readline()
            assert line, "the server closed stdout"
            answers.append(json.loads(line))
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    return answers


def test_malformed_lines_get_errors_and_the_session_goes_on(sqlite_backend: Backend, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": sqlite_backend.url, "SQLGATE_DATA_DIR": str(tmp_path),
           "SQLGATE_AUDIT_ENABLED": "false"}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "execute_query", "arguments": {"query": "SELECT 41 + 1 AS answer"}}}
    answers = session(
        env,
        [json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), "this is not json",
         '{"id": 9, "nonsense": true}', "", json.dumps(call)],
        until_id=2,
    )
    by_id = {a.get("id"): a for a in answers}
    parse_error = next(a for a in answers if a.get("id") is None)
    assert parse_error["error"]["code"] == -32700
    assert by_id[9]["error"]["code"] == -32600
    assert by_id[1]["result"]["serverInfo"]["name"] == "sqlgate"
    assert by_id[2]["result"]["structuredContent"]["rows"] == [[42]], by_id[2]
