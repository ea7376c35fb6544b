"""examples/langgraph_agent.py in its own environment (mcp<2), talking to sqlgate over stdio.

The agent's environment is built from examples/requirements.txt once and cached under
``~/.cache/sqlgate-test/langgraph-venv-<hash of requirements.txt>``, so reruns are fast. This
test needs PyPI the first time; it is required in CI (never skipped).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
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
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    cache = Path.home() / ".cache" / "sqlgate-test"
    cache.mkdir(parents=True, exist_ok=True)
    venv = cache / f"langgraph-venv-{digest}"
    with (cache / "langgraph-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs build it once
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
            pip = subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
                capture_output=True, text=True, timeout=900,
            )
            assert pip.returncode == 0, f"pip install -r examples/requirements.txt failed:\n{pip.stderr[-3000:]}"
            (venv / ".complete").write_text(REQUIREMENTS.read_text())
    return venv / "bin" / "python"


@pytest.mark.slow
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
