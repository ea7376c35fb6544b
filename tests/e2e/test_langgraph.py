"""examples/langgraph_agent.py in its own environment (mcp<2), talking to sqlgate over stdio.

Opt-in, because its environment comes from PyPI: the test runs when
``SQLGATE_TEST_AGENT_VENV`` names a virtual environment built from examples/requirements.txt
(``.ci/setup.d/30-agent-venv.sh`` builds it and ``.ci/run`` sets the variable, so CI always
runs it). Otherwise it skips with the command that builds one; no network at test time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent.parent
REQUIREMENTS = ROOT / "examples" / "requirements.txt"
SQLGATE = str(Path(sys.executable).parent / "sqlgate")


def agent_python() -> Path:
    venv = os.environ.get("SQLGATE_TEST_AGENT_VENV", "")
    if not venv:
        pytest.skip("opt-in: set SQLGATE_TEST_AGENT_VENV to a venv built by "
                    "`SQLGATE_TEST_AGENT_VENV=DIR bash .ci/setup.d/30-agent-venv.sh` (.ci/run does)")
    python = Path(venv) / "bin" / "python"
    assert (Path(venv) / ".complete").read_text() == REQUIREMENTS.read_text(), (
        f"{venv} was built from another examples/requirements.txt: rebuild it with .ci/setup.d/30-agent-venv.sh"
    )
    return python


@pytest.mark.slow
@pytest.mark.agent_env
def test_langgraph_agent_gets_results_and_errors(tmp_path: Path) -> None:
    python = agent_python()
    check = subprocess.run(
        [str(python), "-c", "import mcp.types, importlib.metadata as m; print(m.version('mcp'))"],
        capture_output=True, text=True, timeout=60,
    )
    assert check.stdout.startswith("1."), "the agent env must use mcp 1.x (langchain-mcp-adapters 0.3.2)"

    db = tmp_path / "agent.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE lg_orders (id INTEGER PRIMARY KEY, total NUMERIC)")
        conn.execute("CREATE TABLE lg_secrets (id INTEGER PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO lg_orders VALUES (1, 10), (2, 32)")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "SQLGATE_COMMAND": SQLGATE,
        "DATABASE_URL": f"sqlite:///{db}",
        "SQLGATE_ALLOWED_TABLES": "lg_orders",
        "SQLGATE_DATA_DIR": str(tmp_path),
        "SQLGATE_AUDIT_ENABLED": "false",
        "SQLGATE_AGENT_QUERY": "SELECT sum(total) AS total FROM lg_orders",
        "SQLGATE_AGENT_DENIED_QUERY": "SELECT value FROM lg_secrets",
    }
    run = subprocess.run(
        [str(python), str(ROOT / "examples" / "langgraph_agent.py")],
        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert "execute_query" in lines[0]["tools"] and "describe_schema" in lines[0]["tools"]
    tool_messages: dict[str, Any] = {m["tool_call_id"]: m for m in lines[1:] if m["type"] == "ToolMessage"}

    ok = tool_messages["call-1"]
    assert ok["status"] == "success"
    assert ok["structured_content"]["columns"] == ["total"]
    assert ok["structured_content"]["rows"] == [[42]]

    denied = tool_messages["call-2"]
    assert denied["status"] == "error"
    error = json.loads(denied["text"])["error"]  # sqlgate's error body reaches the agent intact
    assert error["code"] == "TABLE_NOT_ALLOWED"
    assert "lg_orders" in error["hint"]  # the hint names what the agent may query
    assert lines[-1] == {"type": "AIMessage", "text": "Done."}
