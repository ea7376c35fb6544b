"""QUERY_TOO_EXPENSIVE: constant-argument caps for functions that build large values
(safety/cost.py), the limit named in the hint; sizes from columns, parameters or
subqueries refused (fail closed); ordinary uses pass."""

from __future__ import annotations

import pytest

from sqlgate import safety
from sqlgate.errors import PolicyViolation
from sqlgate.safety.cost import MAX_BUILT_BYTES, MAX_SERIES
from sqlgate.safety.policy import Policy

POLICY = Policy(allowed_tables=["t"], allowed_functions=["zeroblob", "randomblob", "array_fill", "printf"])

DENIED = [
    ("postgresql", "SELECT repeat('x', 120000000)", "built value"),
    ("postgresql", "SELECT length(repeat(repeat('ab', 1000), 100))", "built value"),
    ("postgresql", "SELECT lpad('a', 200000000, 'b')", "built value"),
    ("postgresql", "SELECT rpad(a, 1000000) FROM t", "built value"),
    ("postgresql", "SELECT format('%1000000s', 'x')", "built value"),
    ("postgresql", "SELECT format('%*s', 1000000, 'x')", "built value"),
    ("postgresql", "SELECT count(*) FROM generate_series(1, 100000000)", "per series"),
    ("postgresql", "SELECT repeat('x', n) FROM t", "literal number"),
    ("postgresql", "SELECT repeat('x', (SELECT max(n) FROM t))", "literal number"),
    ("postgresql", "SELECT repeat('x', :n)", "literal number"),
    ("postgresql", "SELECT array_fill(0, ARRAY[100000000])", "built value"),
    ("postgresql", "SELECT repeat('ab', 40000) || repeat('cd', 40000)", "built value"),
    ("mysql", "SELECT LOCATE('b', REPEAT('a', 100000000))", "built value"),
    ("mysql", "SELECT SPACE(5000000)", "built value"),
    ("mysql", "SELECT CONCAT(REPEAT('a', 60000), REPEAT('b', 60000))", "built value"),
    ("mysql", "SELECT LPAD(a, n, '0') FROM t", "literal number"),
    ("sqlite", "SELECT printf('%.*c', 120000000, 'x')", "built value"),
    ("sqlite", "SELECT printf('%.*c', n, 'x') FROM t", "literal number"),
    ("sqlite", "SELECT instr(replace(zeroblob(20000000), x'00', 'a'), 'b')", "built value"),
    ("sqlite", "SELECT replace(zeroblob(50000), x'00', 'aaaa')", "built value"),
    ("sqlite", "SELECT hex(randomblob(1000000))", "built value"),
    ("sqlite", "SELECT printf(f, 1) FROM t", "not a literal string"),
]

ALLOWED = [
    ("postgresql", "SELECT repeat('-', 80), lpad(a, 10, '0'), rpad(a, 5) FROM t"),
    ("postgresql", "SELECT format('%s-%s', a, b) FROM t"),
    ("postgresql", "SELECT g FROM generate_series(1, 1000) AS s(g)"),
    ("postgresql", "SELECT d FROM generate_series(DATE '2024-01-01', DATE '2024-12-31', INTERVAL '1 day') AS s(d)"),
    ("postgresql", "SELECT g FROM t, generate_series(1, t.n) AS s(g)"),
    ("mysql", "SELECT REPEAT('=', 40), SPACE(4), FORMAT(1234.5, 2), LPAD(a, 8, '0') FROM t"),
    ("sqlite", "SELECT printf('%d items at %.2f', n, p), hex(randomblob(16)) FROM t"),
    ("sqlite", "SELECT replace(a, 'x', 'yy') FROM t"),
]


@pytest.mark.parametrize(("dialect", "sql", "says"), DENIED, ids=[f"{d}:{s}" for d, s, _ in DENIED])
def test_value_builders_past_their_caps_are_too_expensive(dialect: str, sql: str, says: str) -> None:
    with pytest.raises(PolicyViolation) as caught:
        safety.check(sql, dialect, POLICY)
    error = caught.value
    assert error.code == "QUERY_TOO_EXPENSIVE"
    assert says in error.message + error.hint
    assert f"{MAX_BUILT_BYTES:,}" in error.hint or f"{MAX_SERIES:,}" in error.hint


@pytest.mark.parametrize(("dialect", "sql"), ALLOWED, ids=[f"{d}:{s}" for d, s in ALLOWED])
def test_ordinary_uses_pass(dialect: str, sql: str) -> None:
    safety.check(sql, dialect, POLICY.model_copy(update={"allowed_tables": ("t",)}))
