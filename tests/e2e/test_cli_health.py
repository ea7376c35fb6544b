"""``sqlgate health``, ``sqlgate call`` and ``sqlgate migrate`` as a CI job runs them: a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Backend, unique

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"


def sqlgate(*args: str, data_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLGATE_") and k != "DATABASE_URL"}
    env["SQLGATE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "sqlgate", *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )


@pytest.fixture(scope="session")
def cli_table(backend: Backend) -> tuple[Backend, str]:
    if "cli_table" not in backend.extra:
        name = unique("hcli")
        backend.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY)", f"INSERT INTO {name} (id) VALUES (1), (2)")
        backend.extra["cli_table"] = name
    return backend, backend.extra["cli_table"]


def test_health_healthy_exits_0(cli_table: tuple[Backend, str], tmp_path: Path) -> None:
    backend, table = cli_table
    done = sqlgate("health", "--database-url", backend.url, "--allowed-tables", table, "--test-operations",
                   "--no-check-privileges", data_dir=tmp_path)  # the test servers connect as superusers
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("sqlgate health: healthy")
    assert f"{table} (2 rows)" in done.stdout
    assert "nothing persisted" in done.stdout


def test_health_json_and_degraded_exits_1(cli_table: tuple[Backend, str], tmp_path: Path) -> None:
    backend, table = cli_table
    missing = unique("hcli_missing")
    done = sqlgate("health", "--json", "--database-url", backend.url, "--allowed-tables", f"{table},{missing}",
                   data_dir=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "degraded"
    assert any(missing in reason for reason in report["reasons"])


def test_health_unreachable_exits_2(tmp_path: Path) -> None:
    done = sqlgate("health", "--json", "--database-url", UNREACHABLE, data_dir=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "unhealthy"
    assert report["databases"][0]["reachable"] is False


def test_health_broken_audit_sink_is_degraded(tmp_path: Path) -> None:
    done = sqlgate("health", "--json", "--demo", "--audit-database-url", f"sqlite:///{tmp_path / 'none.sqlite3'}",
                   data_dir=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert json.loads(done.stdout)["audit"]["state"] == "broken"


def test_health_bad_configuration_exits_2(tmp_path: Path) -> None:
    done = sqlgate("health", "--database-url", "oracle://x/y", data_dir=tmp_path)
    assert done.returncode == 2
    assert "unsupported database URL" in done.stderr


def test_call_prints_the_structured_result(tmp_path: Path) -> None:
    done = sqlgate("call", "execute_query", "--args", '{"query": "SELECT count(*) AS n FROM orders"}',
                   data_dir=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["rows"] == [[200]] and result["columns"] == ["n"]


def test_call_tool_error_exits_1(tmp_path: Path) -> None:
    done = sqlgate("call", "execute_query", "--args", '{"query": "DELETE FROM orders WHERE id = 1"}',
                   data_dir=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert json.loads(done.stdout)["error"]["code"] == "WRITE_NOT_ALLOWED"


def test_call_health_check_passes_server_flags(cli_table: tuple[Backend, str], tmp_path: Path) -> None:
    backend, table = cli_table
    done = sqlgate("call", "health_check", "--args", '{"test_operations": true}',
                   "--database-url", backend.url, "--allowed-tables", table, "--no-check-privileges",
                   data_dir=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "healthy"
    assert report["databases"][0]["tables"][0]["name"] == table


def test_call_bad_json_exits_2(tmp_path: Path) -> None:
    done = sqlgate("call", "health_check", "--args", "{nope", data_dir=tmp_path)
    assert done.returncode == 2
    assert "not valid JSON" in done.stderr


def test_migrate_upgrade_current_downgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    up = sqlgate("migrate", "upgrade", "--database-url", url, data_dir=tmp_path)
    assert up.returncode == 0, up.stderr
    current = sqlgate("migrate", "current", "--json", "--database-url", url, data_dir=tmp_path)
    branches = json.loads(current.stdout)["branches"]
    assert branches["sqlgate"]["state"] == "current" and branches["demo"]["state"] == "not_installed"
    refused = sqlgate("migrate", "downgrade", "--database-url", url, data_dir=tmp_path)
    assert refused.returncode == 2  # a downgrade needs an explicit target
    down = sqlgate("migrate", "downgrade", "sqlgate@base", "--database-url", url, data_dir=tmp_path)
    assert down.returncode == 0, down.stderr
    current = sqlgate("migrate", "current", "--json", "--database-url", url, data_dir=tmp_path)
    assert json.loads(current.stdout)["revisions"] == []
