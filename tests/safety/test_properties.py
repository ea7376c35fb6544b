"""Property-based tests of the validator (hypothesis).

* Whatever text arrives, ``check`` returns a Verdict or raises PolicyViolation — never
  anything else (no RecursionError, no parser exception, no crash).
* Queries generated over whitelisted and forbidden tables (joins, subqueries, set
  operations, CTEs, derived tables) are allowed exactly when no forbidden table is read.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlgate import safety
from sqlgate.errors import PolicyViolation
from sqlgate.safety.policy import Policy

DIALECTS = ("postgres", "mysql", "sqlite")
ALLOWED = ("orders", "customers", "products")
FORBIDDEN = ("secrets", "users", "audit_log")
POLICY = Policy(allowed_tables=ALLOWED, max_query_length=20_000)

SQL_WORDS = [
    "SELECT", "FROM", "WHERE", "JOIN", "ON", "UNION", "ALL", "WITH", "AS", "INSERT", "INTO", "VALUES",
    "UPDATE", "SET", "DELETE", "DROP", "TABLE", "CREATE", "COMMIT", "BEGIN", "EXPLAIN", "ANALYZE",
    "PRAGMA", "ATTACH", "COPY", "LIMIT", "ORDER", "BY", "GROUP", "HAVING", "CASE", "WHEN", "THEN",
    "END", "NOT", "NULL", "LATERAL", "RECURSIVE", "orders", "secrets", "pg_sleep", "sleep", "(", ")",
    ",", ";", "'", '"', "`", "$$", "/*", "*/", "--", "/*!", "#", "\n", "*", "=", ":id", "?", "$1",
    "@x", "::", "->", "->>", "E'", "U&'", "\\", "1", "0x1", "'a''b'", "'\\0'", "X'00'", "'\\'",
]


def _check(sql: str, dialect: str, policy: Policy = POLICY) -> object:
    try:
        verdict = safety.check(sql, dialect, policy)
        assert "\x00" not in verdict.sql  # db.dialects.bind relies on it
        return verdict
    except PolicyViolation as violation:
        assert violation.code and violation.hint
        return violation


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=400), dialect=st.sampled_from(DIALECTS))
def test_random_text_only_raises_policy_violation(text: str, dialect: str) -> None:
    _check(text, dialect)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(st.sampled_from(SQL_WORDS), max_size=60), dialect=st.sampled_from(DIALECTS))
def test_random_sql_words_only_raise_policy_violation(words: list[str], dialect: str) -> None:
    _check(" ".join(words), dialect)
    _check("".join(words), dialect)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    opener=st.sampled_from(["(", "NOT ", "- ", "CASE WHEN 1=1 THEN ", "(SELECT "]),
    depth=st.integers(min_value=60, max_value=3000),
    dialect=st.sampled_from(DIALECTS),
)
def test_deep_nesting_is_a_clean_denial(opener: str, depth: int, dialect: str) -> None:
    sql = "SELECT " + opener * depth + "1"
    outcome = _check(sql, dialect, Policy(allowed_tables=ALLOWED, max_query_length=1_000_000))
    if depth > 64:
        assert isinstance(outcome, PolicyViolation)


# --------------------------------------------------------------- generated queries


@st.composite
def queries(draw: st.DrawFn, depth: int = 0) -> tuple[str, set[str]]:
    """A SELECT over random tables, and the set of real tables it reads."""
    kind = draw(st.sampled_from(["plain", "join", "where_in", "scalar", "union", "derived", "cte", "exists"])
                if depth < 3 else st.just("plain"))
    table = draw(st.sampled_from(ALLOWED + FORBIDDEN))
    if kind == "plain":
        return f"SELECT id FROM {table}", {table}
    if kind == "join":
        other = draw(st.sampled_from(ALLOWED + FORBIDDEN))
        return f"SELECT a.id FROM {table} AS a JOIN {other} AS b ON a.id = b.id", {table, other}
    inner, used = draw(queries(depth + 1))
    if kind == "where_in":
        return f"SELECT id FROM {table} WHERE id IN ({inner})", used | {table}
    if kind == "scalar":
        return f"SELECT id, ({inner} LIMIT 1) AS x FROM {table}", used | {table}
    if kind == "union":
        return f"SELECT id FROM {table} UNION ALL {inner}", used | {table}
    if kind == "derived":
        return f"SELECT d.id FROM ({inner}) AS d", used
    if kind == "exists":
        return f"SELECT id FROM {table} WHERE EXISTS ({inner})", used | {table}
    # A CTE: its name may shadow a table name; reading the CTE reads only its body.
    name = draw(st.sampled_from(("cte_x",) + ALLOWED + FORBIDDEN))
    return f"WITH {name} AS ({inner}) SELECT id FROM {name}", used


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=queries(), dialect=st.sampled_from(DIALECTS))
def test_allowed_exactly_when_no_forbidden_table(query: tuple[str, set[str]], dialect: str) -> None:
    sql, used = query
    outcome = _check(sql, dialect)
    forbidden = used & set(FORBIDDEN)
    if forbidden:
        assert isinstance(outcome, PolicyViolation), sql
        assert outcome.code == "TABLE_NOT_ALLOWED", (sql, outcome.message)
        assert any(t in outcome.message for t in forbidden)
    else:
        assert not isinstance(outcome, PolicyViolation), (sql, getattr(outcome, "message", ""))
        assert set(outcome.tables) <= set(ALLOWED)  # type: ignore[attr-defined]
        # What is sent passes the validator too, reading the same tables.
        again = safety.check(outcome.sql, dialect, POLICY)  # type: ignore[attr-defined]
        assert set(again.tables) == set(outcome.tables)  # type: ignore[attr-defined]


# --------------------------------------------------------------- denied columns

DENY_SSN = Policy(allowed_tables=ALLOWED, denied_columns=("customers.ssn",))
COLUMN_REFS = st.tuples(st.sampled_from(["c", "o", ""]), st.sampled_from(["id", "name", "ssn", "*"]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    refs=st.lists(COLUMN_REFS, min_size=1, max_size=4),
    where=st.lists(COLUMN_REFS.filter(lambda r: r[1] != "*"), max_size=2),
    join_customers=st.booleans(),
    dialect=st.sampled_from(DIALECTS),
)
def test_denied_column_read_exactly_when_referenced(
    refs: list[tuple[str, str]], where: list[tuple[str, str]], join_customers: bool, dialect: str
) -> None:
    aliases = {"o"} | ({"c"} if join_customers else set())
    refs = [r for r in refs if r[0] in aliases or r[0] == ""] or [("o", "id")]
    where = [r for r in where if r[0] in aliases or r[0] == ""]
    stars = [r for r in refs if r[1] == "*"]
    if stars and len(refs) > 1:
        refs = stars[:1]  # a lone * or t.*
    sql = "SELECT " + ", ".join(f"{q}.{n}" if q else n for q, n in refs) + " FROM orders o"
    if join_customers:
        sql += " JOIN customers c ON c.id = o.customer_id"
    if where:
        sql += " WHERE " + " AND ".join((f"{q}.{n}" if q else n) + " = 1" for q, n in where)
    reads_ssn = join_customers and any(n == "ssn" and q in ("c", "") for q, n in refs + where)
    star_over_customers = join_customers and any(n == "*" and q in ("c", "") for q, n in refs)
    outcome = _check(sql, dialect, DENY_SSN)
    if reads_ssn or star_over_customers:
        assert isinstance(outcome, PolicyViolation), sql
        assert outcome.code == "COLUMN_NOT_ALLOWED", (sql, outcome.message)
    else:
        assert not isinstance(outcome, PolicyViolation), (sql, getattr(outcome, "message", ""))


RW = Policy(allowed_tables=ALLOWED, mode="read_write")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    query=queries(depth=2),
    target=st.sampled_from(ALLOWED + FORBIDDEN),
    cte=st.sampled_from(("src",) + ALLOWED + FORBIDDEN),
    verb=st.sampled_from(["insert", "update", "delete"]),
    dialect=st.sampled_from(("postgres", "sqlite")),
)
def test_write_target_is_checked_even_when_a_cte_shadows_it(
    query: tuple[str, set[str]], target: str, cte: str, verb: str, dialect: str
) -> None:
    inner, used = query
    if verb == "insert":
        body = f"INSERT INTO {target} (id) SELECT id FROM {cte}"
    elif verb == "update":
        body = f"UPDATE {target} SET id = 1 WHERE id IN (SELECT id FROM {cte})"
    else:
        body = f"DELETE FROM {target} WHERE id IN (SELECT id FROM {cte})"
    sql = f"WITH {cte} AS ({inner}) {body}"
    outcome = _check(sql, dialect, RW)
    forbidden = (used | {target}) & set(FORBIDDEN)
    if forbidden:
        assert isinstance(outcome, PolicyViolation), sql
        assert outcome.code == "TABLE_NOT_ALLOWED", (sql, outcome.message)
    else:
        assert not isinstance(outcome, PolicyViolation), (sql, getattr(outcome, "message", ""))
