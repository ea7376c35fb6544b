"""Precision (issue 11, part 5): positional placeholders, comments after the last
semicolon, PostgreSQL backslashes and the SQL sent keeping what the agent wrote — and,
for each relaxation, the smuggling shapes it must not let through."""

from __future__ import annotations

from typing import Any

import pytest

from sqlgate import safety
from sqlgate.errors import InvalidArgument, PolicyViolation
from sqlgate.safety.policy import Policy
from tests.conftest import Backend

POLICY = Policy(allowed_tables=("orders", "customers", "prec_items"), default_schema=None)
RW = Policy(allowed_tables=("orders", "customers", "prec_items"), mode="read_write")


def allowed(sql: str, dialect: str, policy: Policy = POLICY) -> safety.Verdict:
    return safety.check(sql, dialect, policy)


def denied(sql: str, dialect: str, policy: Policy = POLICY) -> PolicyViolation:
    with pytest.raises(PolicyViolation) as caught:
        safety.check(sql, dialect, policy)
    assert caught.value.hint
    return caught.value


# ------------------------------------------------------------------ positional placeholders

@pytest.mark.parametrize(("dialect", "sql"), [
    ("postgresql", "SELECT id FROM orders WHERE id = $1 AND total > $2"),
    ("mysql", "SELECT id FROM orders WHERE id = ? AND total > ?"),
    ("sqlite", "SELECT id FROM orders WHERE id = ? AND total > ?"),
])
def test_positional_placeholders_in_the_dialects_style(dialect: str, sql: str) -> None:
    verdict = allowed(sql, dialect)
    assert verdict.positional and verdict.parameters == ("1", "2")
    assert verdict.values([7, 10]) == {"1": 7, "2": 10}


@pytest.mark.parametrize(("dialect", "sql", "style"), [
    ("postgresql", "SELECT id FROM orders WHERE id = ?", "$1"),
    ("mysql", "SELECT id FROM orders WHERE id = %s", "?"),
    ("sqlite", "SELECT id FROM orders WHERE id = $1", "?"),
])
def test_the_wrong_style_says_which_is_right(dialect: str, sql: str, style: str) -> None:
    violation = denied(sql, dialect)
    assert violation.code == "PARSE_ERROR"
    assert style in violation.hint


@pytest.mark.parametrize(("dialect", "sql"), [
    ("mysql", "SELECT id FROM orders WHERE id = ? # the id\n"),
    ("sqlite", "SELECT id FROM orders WHERE id = ? -- ?\n"),
    ("postgresql", "SELECT id FROM orders WHERE id = $1 /* $2 */"),
])
def test_a_comment_next_to_a_placeholder_is_no_placeholder(dialect: str, sql: str) -> None:
    verdict = allowed(sql, dialect)
    assert verdict.parameters == ("1",) and "--" not in verdict.sql and "#" not in verdict.sql


def test_styles_do_not_mix() -> None:
    assert "one style" in denied("SELECT id FROM orders WHERE id = $1 AND total > :t", "postgresql").hint
    assert "one style" in denied("SELECT id FROM orders WHERE id = ? AND total > :t", "sqlite").hint


def test_dollar_numbers_repeat_and_count_by_the_highest() -> None:
    verdict = allowed("SELECT id FROM orders WHERE id = $1 OR customer_id = $1 OR total > $2", "postgresql")
    assert verdict.parameters == ("1", "2")
    assert verdict.values(["a", "b"]) == {"1": "a", "2": "b"}


@pytest.mark.parametrize(("sql", "given", "fix"), [
    ("SELECT id FROM orders WHERE id = ?", {"id": 3}, "array"),
    ("SELECT id FROM orders WHERE id = ?", [1, 2], "exactly 1"),
    ("SELECT id FROM orders WHERE id = ?", None, "array"),
    ("SELECT id FROM orders WHERE id = :id", [3], '"id"'),
    ("SELECT id FROM orders", [3], "remove `parameters`"),
])
def test_parameter_shape_mismatches_name_the_fix(sql: str, given: Any, fix: str) -> None:
    verdict = allowed(sql, "sqlite")
    with pytest.raises(InvalidArgument) as caught:
        verdict.values(given)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert fix in caught.value.hint + caught.value.message


@pytest.mark.parametrize(("dialect", "sql"), [
    ("mysql", "SELECT id FROM orders WHERE note = '?' AND id = ?"),
    ("sqlite", "SELECT id FROM orders WHERE note = 'a ? b' AND id = ?"),
    ("postgresql", "SELECT $$ $1 $$ AS s, id FROM orders WHERE id = $2"),
    ("postgresql", "SELECT id FROM orders WHERE note = '$1' AND id = $2"),
])
def test_placeholders_inside_strings_are_text(dialect: str, sql: str) -> None:
    verdict = allowed(sql, dialect)
    assert len(verdict.parameters) == 1
    assert "'" in verdict.sql  # the string stays a string in the text sent


# ------------------------------------------------------------------ semicolons and comments

@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM orders; -- row count",
    "SELECT count(*) FROM orders;   ",
    "SELECT count(*) FROM orders; /* done */",
    "SELECT count(*) FROM orders -- trailing\n",
])
def test_a_comment_after_the_last_semicolon_is_no_statement(dialect: str, sql: str) -> None:
    verdict = allowed(sql, dialect)
    assert verdict.statement_kinds == ("select",)
    assert "--" not in verdict.sql and "/*" not in verdict.sql


@pytest.mark.parametrize(("dialect", "sql"), [
    ("postgresql", "SELECT 1; -- x\n DROP TABLE orders"),
    ("mysql", "SELECT 1; # x\n DROP TABLE orders"),
    ("sqlite", "SELECT 1; /* x */ DELETE FROM orders"),
    ("postgresql", "SELECT 1; /* a /* nested */ still comment */ DROP TABLE orders"),
])
def test_statements_after_a_comment_still_count(dialect: str, sql: str) -> None:
    assert denied(sql, dialect).code in {"MULTI_STATEMENT", "PARSE_ERROR", "STATEMENT_NOT_ALLOWED"}


@pytest.mark.parametrize("sql", [
    "SELECT /*+ MAX_EXECUTION_TIME(1000) */ id FROM orders /*!50000 UNION SELECT * FROM secrets */",
    "SELECT id FROM orders /*M! , LOAD_FILE('/etc/passwd') */",
    "SELECT /*+ BKA(orders) */ id FROM orders; DROP TABLE orders",
])
def test_mysql_hints_and_executable_comments_carry_nothing(sql: str) -> None:
    with pytest.raises(PolicyViolation):
        safety.check(sql, "mysql", POLICY)


@pytest.mark.parametrize("sql", [
    "SELECT /*+ 1000) MAX_EXECUTION_TIME(0 */ id FROM orders",
    "SELECT /*+ SET_VAR(max_execution_time=0) BKA(t@@) */ id FROM orders",
    "SELECT /*+ MAX_EXECUTION_TIME(0) */ id FROM orders",
    "SELECT /*+ SET_VAR(sql_mode='') */ id FROM orders",
])
def test_mysql_hints_must_parse_into_calls_the_rules_see(sql: str) -> None:
    """MySQL runs the hints before a syntax error in the comment: raw hint text is refused."""
    denied(sql, "mysql")


def test_a_readable_hint_within_the_timeout_is_sent() -> None:
    verdict = allowed("SELECT /*+ MAX_EXECUTION_TIME(1000) */ id FROM orders", "mysql")
    assert verdict.sql.startswith("SELECT /*+ MAX_EXECUTION_TIME(1000) */ id")


def test_comments_never_reach_the_server() -> None:
    verdict = allowed("SELECT id /* , ssn */ FROM customers -- WHERE 1=1\nWHERE id = 1", "postgresql")
    assert "ssn" not in verdict.sql and "1=1" not in verdict.sql


# ------------------------------------------------------------------ PostgreSQL backslashes

@pytest.mark.parametrize(("sql", "sent"), [
    ("SELECT id FROM customers WHERE name ~ '^\\w+$'", "E'^\\\\w+$'"),
    ("SELECT regexp_replace(name, '\\s+', ' ', 'g') FROM customers", "E'\\\\s+'"),
    ("SELECT name FROM customers WHERE name LIKE '%\\_%'", "E'%\\\\_%'"),
    ("SELECT string_agg(name, E'\\n') FROM customers", "'\n'"),
])
def test_postgresql_backslash_literals_are_allowed_and_sent_setting_independent(sql: str, sent: str) -> None:
    assert sent in allowed(sql, "postgresql").sql


@pytest.mark.parametrize("sql", [
    "SELECT 'a\\'; DROP TABLE orders; --'",
    "SELECT 'a\\' AS c, ' UNION SELECT password FROM secrets --' AS d FROM orders",
    "SELECT E'\\x27; DROP TABLE orders; --' AS s",
    "SELECT E'\\047' AS s",
    "SELECT E'\\u0027' AS s",
    "SELECT $$a\\$$ AS c, ' UNION SELECT password FROM secrets --' AS d FROM orders",
    "SELECT 'C:\\' AS path",
])
def test_postgresql_backslash_smuggling_shapes_stay_refused(sql: str) -> None:
    assert denied(sql, "postgresql").code == "PARSE_ERROR"


def test_mysql_backslash_values_are_sent_escaped() -> None:
    verdict = allowed("SELECT id FROM customers WHERE name = 'O\\'Brien' OR email LIKE '%\\_%'", "mysql")
    assert "'O''Brien'" in verdict.sql and "'%\\\\_%'" in verdict.sql


# ------------------------------------------------------------------ faithful rendering

@pytest.mark.parametrize(("dialect", "sql", "kept"), [
    ("mysql", "SELECT count(*), avg(total) FROM orders", "count(*), avg(total)"),
    ("sqlite", "select lower(name)||'x' from customers", "lower(name)||'x'"),
    ("mysql", "SELECT id FROM customers WHERE name REGEXP '^a' OR name RLIKE 'b$'", "name REGEXP '^a' OR name RLIKE 'b$'"),
    ("postgresql", "SELECT date_part('year', created_at) FROM orders", "date_part('year', created_at)"),
    ("postgresql", "SELECT now(), current_date", "now(), current_date"),
    ("mysql", "SELECT ifnull(note, '-'), instr(name, 'a') FROM orders", "ifnull(note, '-'), instr(name, 'a')"),
    ("postgresql", "EXPLAIN (ANALYZE false) SELECT * FROM orders", "EXPLAIN (ANALYZE false)"),
])
def test_the_sql_sent_keeps_what_was_written(dialect: str, sql: str, kept: str) -> None:
    assert kept in allowed(sql, dialect).sql


def test_the_row_cap_keeps_the_label_and_lowers_a_larger_limit() -> None:
    verdict = allowed("SELECT id FROM orders ORDER BY id LIMIT 5000", "mysql")
    assert verdict.sql == "SELECT id FROM orders ORDER BY id LIMIT 1001"
    verdict = allowed("SELECT id FROM orders LIMIT 10, 5000", "mysql")
    assert verdict.sql.endswith("LIMIT 10, 1001")


def test_identifiers_and_strings_are_requoted() -> None:
    verdict = allowed('SELECT [id], `name` FROM customers WHERE name = "x"', "sqlite")
    assert verdict.sql.startswith('SELECT "id", "name" FROM customers')
    assert "'x'" not in verdict.sql  # a SQLite "x" is an identifier: it stays one
    assert allowed('SELECT id FROM customers WHERE name = "x"', "mysql").sql.endswith("name = 'x' LIMIT 1001")


def test_tokens_that_could_run_together_are_kept_apart() -> None:
    assert "- -1" in allowed("SELECT 1--1", "mysql").sql  # MySQL: 1 minus -1, no comment


# ------------------------------------------------------------------ end to end, real servers

pytestmark_e2e = pytest.mark.anyio
STYLE = {"sqlite": "?", "postgres": "$1", "mysql": "?"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def items(backend: Backend) -> Backend:
    if not backend.extra.get("prec_items"):
        text = "VARCHAR(100)" if backend.name == "mysql" else "TEXT"
        backend.execute(
            "DROP TABLE IF EXISTS prec_items",
            f"CREATE TABLE prec_items (id INTEGER PRIMARY KEY, name {text}, note {text})",
            "INSERT INTO prec_items VALUES (1, 'alpha', 'a b'), (2, 'beta', NULL), (3, 'gamma_x', 'tab')",
        )
        backend.extra["prec_items"] = True
    return backend


async def _query(client: Any, **arguments: Any) -> Any:
    return await client.call_tool("execute_query", arguments)


@pytest.mark.anyio
async def test_positional_parameters_through_execute_query(items: Backend) -> None:
    mark = STYLE[items.name]
    second = "$2" if mark == "$1" else "?"
    async with items.client(allowed_tables="prec_items") as client:
        ok = await _query(client, query=f"SELECT name FROM prec_items WHERE id = {mark} OR id = {second} ORDER BY id",
                          parameters=[1, 3])
        wrong_shape = await _query(client, query=f"SELECT name FROM prec_items WHERE id = {mark}", parameters={"id": 1})
        wrong_count = await _query(client, query=f"SELECT name FROM prec_items WHERE id = {mark}", parameters=[1, 2])
        named_array = await _query(client, query="SELECT name FROM prec_items WHERE id = :id", parameters=[3])
    assert not ok.is_error, ok.content
    assert ok.structured_content["rows"] == [["alpha"], ["gamma_x"]]
    for result in (wrong_shape, wrong_count, named_array):
        assert result.is_error
        error = result.structured_content["error"]
        assert error["code"] == "INVALID_ARGUMENT" and error["hint"]


@pytest.mark.anyio
async def test_labels_and_regexes_as_written(items: Backend) -> None:
    async with items.client(allowed_tables="prec_items") as client:
        counted = await _query(client, query="SELECT count(*), max(name) FROM prec_items; -- how many")
        regex = await _query(
            client,
            query=("SELECT id FROM prec_items WHERE name REGEXP '^g' ORDER BY id" if items.name == "mysql" else
                   "SELECT id FROM prec_items WHERE name ~ '^g\\w+$' ORDER BY id" if items.name == "postgres" else
                   "SELECT id FROM prec_items WHERE name LIKE 'g%' ORDER BY id"),
        )
    assert not counted.is_error, counted.content
    expected = ["count", "max"] if items.name == "postgres" else ["count(*)", "max(name)"]
    assert counted.structured_content["columns"] == expected
    assert counted.structured_content["rows"] == [[3, "gamma_x"]]
    assert not regex.is_error, regex.content
    assert regex.structured_content["rows"] == [[3]]


LITERALS = {
    "postgres": "SELECT '^\\w+$' AS a, E'x\\ny' AS b, '%\\_%' AS c, 'it''s' AS d",
    "mysql": "SELECT 'a\\\\b' AS a, 'x\\ny' AS b, '%\\_%' AS c, 'it\\'s' AS d",
    "sqlite": "SELECT 'a\\b' AS a, 'x' AS b, '%\\_%' AS c, 'it''s' AS d",
}


@pytest.mark.anyio
async def test_literal_values_are_identical_as_written_and_as_sent(items: Backend) -> None:
    sql = LITERALS[items.name]
    written = await items.aexecute(sql)
    async with items.client(allowed_tables="prec_items") as client:
        sent = await _query(client, query=sql)
    assert not sent.is_error, sent.content
    assert [list(row) for row in written] == sent.structured_content["rows"]


ATTACKS: dict[str, list[str]] = {
    "all": [
        "SELECT name FROM prec_items; -- x\n DROP TABLE prec_items",
        "SELECT name FROM prec_items /* ; DROP TABLE prec_items */ WHERE id = 1",
        "SELECT name FROM prec_items WHERE name = '?' OR id = 1 -- ?",
        "SELECT 1--1\n; DROP TABLE prec_items",
        "SELECT name FROM prec_items WHERE name = 'x' UNION SELECT secret FROM prec_secrets",
        "SELECT name FROM prec_items WHERE name = 'x'' UNION SELECT secret FROM prec_secrets --'",
    ],
    "postgres": [
        "SELECT 'a\\' AS c, ' UNION SELECT secret FROM prec_secrets --' AS d FROM prec_items",
        "SELECT E'\\x27 UNION SELECT secret FROM prec_secrets --' FROM prec_items",
        "SELECT 1 /* /* */ UNION SELECT secret FROM prec_secrets */",
        "SELECT name FROM prec_items WHERE name = E'\\'' OR true --'",
        "SELECT $$a\\$$ AS c, ' UNION SELECT secret FROM prec_secrets --' FROM prec_items",
        "SELECT name FROM prec_items WHERE name = $$ $1 $$ OR id = $1",
    ],
    "mysql": [
        "SELECT name FROM prec_items WHERE name = 'x\\' UNION SELECT secret FROM prec_secrets -- '",
        "SELECT name FROM prec_items /*!50000 UNION SELECT secret FROM prec_secrets */",
        "SELECT /*+ BKA(prec_items) */ name FROM prec_items /*+ UNION SELECT secret FROM prec_secrets */",
        "SELECT name FROM prec_items WHERE name = \"x\\\" UNION SELECT secret FROM prec_secrets -- \"",
        "SELECT 1 --1 UNION SELECT secret FROM prec_secrets",
        "SELECT name FROM prec_items WHERE id = ? # ?\n",
        "SELECT name FROM prec_items WHERE id = ? -- ? ; DROP TABLE prec_items\n",
    ],
    "sqlite": [
        "SELECT name FROM prec_items WHERE name = \"x\" UNION SELECT secret FROM prec_secrets",
        "SELECT name FROM prec_items WHERE id = ?1 OR id = ?",
    ],
}


@pytest.mark.anyio
async def test_smuggling_attempts_on_the_real_servers(items: Backend) -> None:
    """Every relaxation (comments after ;, backslashes, positional placeholders, hints,
    rendering from the tokens) tried as an attacker would: no secret in any answer, no
    second statement run."""
    text = "VARCHAR(100)" if items.name == "mysql" else "TEXT"
    await items.aexecute(
        "DROP TABLE IF EXISTS prec_secrets",
        f"CREATE TABLE prec_secrets (id INTEGER PRIMARY KEY, secret {text})",
        "INSERT INTO prec_secrets VALUES (1, 'hunter2')",
    )
    async with items.client(allowed_tables="prec_items", mode="read_write") as client:
        for sql in ATTACKS["all"] + ATTACKS[items.name]:
            parameters = [1] if ("?" in sql or "$1" in sql) else None
            result = await _query(client, query=sql, parameters=parameters)
            body = str(result.content) + str(result.structured_content)
            assert "hunter2" not in body, sql
    assert await items.aexecute("SELECT count(*) FROM prec_items") == [(3,)]


def test_the_driver_sends_the_checked_text_and_a_changed_copy_is_rendered_afresh() -> None:
    from sqlgate.db.dialects.base import template

    verdict = allowed("SELECT count(*) FROM orders WHERE id = :id", "mysql")
    statement = verdict.expressions[0]
    assert template(statement, verdict.dialect) == ["SELECT count(*) FROM orders WHERE id = ", "id", " LIMIT 1001"]
    copy = statement.copy()
    copy.set("limit", None)  # what the advisor does: its own copy, its own text
    assert template(copy, verdict.dialect) == ["SELECT COUNT(*) FROM orders WHERE id = ", "id", ""]


@pytest.mark.anyio
async def test_a_long_text_checked_off_the_loop_is_sent_as_written(items: Backend) -> None:
    """Texts over tools.checking.INLINE_CHARS are checked in a worker process and their
    trees parsed back from the text sent: placeholders and labels must survive that."""
    mark = STYLE[items.name]
    names = ", ".join(f"'name-{i:05d}'" for i in range(250))
    sql = f"SELECT count(*) FROM prec_items WHERE id = {mark} OR name IN ({names})"
    assert len(sql) > 2_000
    async with items.client(allowed_tables="prec_items") as client:
        result = await _query(client, query=sql, parameters=[2])
    assert not result.is_error, result.content
    assert result.structured_content["columns"] == (["count"] if items.name == "postgres" else ["count(*)"])
    assert result.structured_content["rows"] == [[1]]


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
def test_false_denials_of_ordinary_analytics_stay_under_two_percent(dialect: str) -> None:
    """Issue 11's bar on the ordinary-analytics corpus (tests/safety/analytics_corpus.toml)."""
    import tomllib
    from pathlib import Path

    from tests.safety.test_corpus import policy_for

    queries = [q for q in tomllib.loads((Path(__file__).parent / "analytics_corpus.toml").read_text())["query"]
               if dialect in q["dialects"]]
    refused = []
    for query in queries:
        outcome = safety.check_uncached(query["sql"], dialect, policy_for({}, dialect))
        if isinstance(outcome, PolicyViolation):
            refused.append(f"{query['id']}: {outcome.code} {outcome.message}")
    assert len(queries) >= 130
    assert len(refused) / len(queries) <= 0.02, "\n".join(refused)
