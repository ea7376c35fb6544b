"""``sqlgate check``: the validator for people and CI — JSON verdict, non-zero exit on deny."""

from __future__ import annotations

import json
import subprocess
import sys


def sqlgate_check(*args: str, stdin: str | None = None) -> tuple[int, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "sqlgate", "check", *args],
        capture_output=True, text=True, timeout=60, input=stdin, check=False,
    )
    return done.returncode, json.loads(done.stdout)


def test_allowed_query_prints_verdict_and_exits_0() -> None:
    code, out = sqlgate_check("SELECT id FROM orders WHERE id = :id", "--dialect", "postgres", "--tables", "orders")
    assert code == 0
    assert out["allowed"] is True
    assert out["statement_kind"] == "select"
    assert out["tables"] == ["orders"]
    assert out["parameters"] == ["id"]
    assert "LIMIT 1001" in out["sql"]


def test_denied_query_prints_code_and_hint_and_exits_1() -> None:
    code, out = sqlgate_check("SELECT * FROM secrets", "--dialect", "mysql", "--tables", "orders,customers")
    assert code == 1
    assert out["allowed"] is False
    assert out["code"] == "TABLE_NOT_ALLOWED"
    assert "customers, orders" in out["hint"]


def test_policy_flags() -> None:
    code, out = sqlgate_check("SELECT * FROM customers", "--tables", "customers", "--denied-columns", "customers.ssn")
    assert (code, out["code"]) == (1, "COLUMN_NOT_ALLOWED")
    code, out = sqlgate_check("DELETE FROM t", "--tables", "t", "--mode", "read_write", "--dialect", "sqlite")
    assert (code, out["code"]) == (1, "UNBOUNDED_WRITE")
    code, out = sqlgate_check("DELETE FROM t", "--tables", "t", "--mode", "read_write", "--allow-unbounded-writes")
    assert (code, out["writes"]) == (0, True)
    code, out = sqlgate_check("SELECT pg_sleep(1)", "--allowed-functions", "pg_sleep")
    assert code == 0
    code, out = sqlgate_check("SELECT lower('x')", "--denied-functions", "lower")
    assert (code, out["code"]) == (1, "FUNCTION_NOT_ALLOWED")
    code, out = sqlgate_check("SELECT 1", "--max-query-length", "3")
    assert (code, out["code"]) == (1, "QUERY_TOO_LARGE")


def test_reads_sql_from_stdin() -> None:
    code, out = sqlgate_check("-", "--dialect", "sqlite", stdin="COMMIT; DROP TABLE orders")
    assert (code, out["code"]) == (1, "MULTI_STATEMENT")
