"""Operations polish (issue 16): a mistyped command says what was meant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sqlgate.cli import main


@pytest.mark.parametrize(("typed", "meant"), [("server", "serve"), ("helth", "health"), ("migrat", "migrate")])
def test_mistyped_command_says_did_you_mean(typed: str, meant: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([typed]) == 2
    err = capsys.readouterr().err
    assert f"unknown command '{typed}'" in err and f"did you mean `sqlgate {meant}`?" in err


def test_unknown_word_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["xyzzy"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'xyzzy'" in err and "serve" in err and "health" in err


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
def test_check_refuses_a_denied_column_without_its_table(dialect: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`sqlgate check` reads denied_columns as `sqlgate serve` does: `ssn` alone names no
    column (it would protect nothing), so the flag is refused, not ignored."""
    code = main(["check", "--dialect", dialect, "--denied-columns", "ssn", "SELECT ssn FROM customers"])
    assert code == 2
    assert "denied_columns entry 'ssn'" in capsys.readouterr().out
    code = main(["check", "--dialect", dialect, "--tables", "customers", "--denied-columns", "customers.ssn",
                 "SELECT ssn FROM customers"])
    assert code == 1 and '"COLUMN_NOT_ALLOWED"' in capsys.readouterr().out


@pytest.mark.parametrize("variable", ["SQLGATE_DENIED_COLUMN", "SQLGATE_AUDIT_ENABLE", "SQLGATE_ALLOWED_TABLE"])
def test_a_misspelt_protective_variable_stops_start_up(variable: str, tmp_path: Path) -> None:
    """SQLGATE_DENIED_COLUMN=customers.ssn would be ignored and the column readable: a
    variable close to a protective setting is refused; others only warn."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "SQLGATE_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "sqlgate", "call", "execute_query", "--args", '{"query": "SELECT 1"}']
    refused = subprocess.run(command, env={**env, variable: "customers.ssn"}, capture_output=True, text=True,
                             timeout=60, check=False)
    assert refused.returncode == 2 and variable in refused.stderr, refused.stderr
    # deploy/fleet.sh's own variable is no near miss of a protection: a warning, the call runs.
    served = subprocess.run(command, env={**env, "SQLGATE_WORKERS": "3"}, capture_output=True, text=True,
                            timeout=60, check=False)
    assert served.returncode == 0, served.stderr
