"""The verdict cache by shape: integer literals compared with columns travel as bound
parameters; everything a rule reads (LIMIT, function arguments, strings) stays in the key."""

from __future__ import annotations

import pytest

from sqlgate.errors import PolicyViolation
from sqlgate.safety import Policy, check
from sqlgate.safety.shapes import check_shape, literal_spans, shape_cache_clear
from tests.conftest import Backend, unique

DIALECTS = ("postgresql", "mysql", "sqlite")
POLICY = Policy(allowed_tables=("orders",))


@pytest.fixture(autouse=True)
def _fresh() -> None:
    shape_cache_clear()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_second_literal_is_served_by_shape_with_the_same_text(dialect: str) -> None:
    first = check_shape("SELECT * FROM orders WHERE id = 5", dialect, POLICY)
    second = check_shape("SELECT * FROM orders WHERE id = 77", dialect, POLICY)
    assert first.bound == ()  # the first one is the validator's own verdict
    assert second.bound == (("sqlgate_lit_0", 77),)
    fresh = check("SELECT * FROM orders WHERE id = 77", dialect, POLICY)
    assert second.sql == fresh.sql
    assert (second.statement_kinds, second.tables, second.writes, second.parameters, second.row_capped) == (
        fresh.statement_kinds, fresh.tables, fresh.writes, fresh.parameters, fresh.row_capped
    )
    assert ":sqlgate_lit_0" in second.expressions[0].sql()


@pytest.mark.parametrize(
    "template",
    [
        "SELECT * FROM orders WHERE id = 5 LIMIT {n}",  # the row cap reads LIMIT
        "SELECT * FROM orders WHERE id = abs({n})",  # function arguments
        "SELECT {n} FROM orders WHERE id = 3",  # the select list
        "SELECT * FROM orders WHERE id IN (1, {n})",
        "SELECT * FROM orders WHERE id BETWEEN 1 AND {n}",
        "SELECT * FROM orders WHERE id + {n} = 3",
        "SELECT * FROM orders WHERE status = '{n}'",  # strings
        "SELECT * FROM orders WHERE id = 3 -- {n}",
    ],
)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_literals_rules_can_read_stay_in_the_key(template: str, dialect: str) -> None:
    check_shape(template.format(n=5), dialect, POLICY)
    again = check_shape(template.format(n=900), dialect, POLICY)
    assert again.bound == ()
    assert "sqlgate_lit" not in again.expressions[0].sql()


def test_other_limit_on_a_cached_shape_goes_through_the_validator() -> None:
    check_shape("SELECT * FROM orders WHERE id = 5 LIMIT 10", "postgresql", POLICY)
    other = check_shape("SELECT * FROM orders WHERE id = 6 LIMIT 10", "postgresql", POLICY)
    assert other.bound == (("sqlgate_lit_0", 6),)
    capped = check_shape("SELECT * FROM orders WHERE id = 6 LIMIT 5000", "postgresql", POLICY)
    assert capped.bound == () and capped.row_capped and "LIMIT 1001" in capped.sql


def test_denials_are_never_served_by_shape() -> None:
    check_shape("SELECT * FROM orders WHERE id = 5", "postgresql", POLICY)
    with pytest.raises(PolicyViolation):
        check_shape("SELECT * FROM secrets WHERE id = 5", "postgresql", POLICY)
    with pytest.raises(PolicyViolation):
        check_shape("DELETE FROM orders WHERE id = 6", "postgresql", Policy(allowed_tables=("orders",)))


def test_writes_are_not_hoisted() -> None:
    policy = Policy(allowed_tables=("orders",), mode="read_write")
    check_shape("UPDATE orders SET status = 'x' WHERE id = 5", "postgresql", policy)
    again = check_shape("UPDATE orders SET status = 'x' WHERE id = 6", "postgresql", policy)
    assert again.bound == ()


def test_lexer_gives_up_on_text_it_cannot_read() -> None:
    assert literal_spans("SELECT $$ 5 $$") is None
    assert literal_spans("SELECT 'a\\' 5") is None  # a backslash reads differently per dialect
    assert literal_spans("SELECT t1.c2 FROM t3 WHERE x = 1.5 AND y = 2e3") == []
    assert literal_spans("SELECT * FROM orders WHERE id = 42") == [(32, 34)]


def test_a_user_placeholder_with_the_reserved_name_disables_hoisting() -> None:
    sql = "SELECT * FROM orders WHERE id = :sqlgate_lit_0 AND id = {n}"
    check_shape(sql.format(n=1), "postgresql", POLICY)
    again = check_shape(sql.format(n=2), "postgresql", POLICY)
    assert again.bound == ()


async def test_hoisted_literals_return_the_same_rows(backend: Backend) -> None:
    table = unique("shp")
    await backend.aexecute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, body VARCHAR(20), small SMALLINT)",
        f"INSERT INTO {table} (id, body, small) VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3)",
    )
    async with backend.client(allowed_tables=table) as client:
        rows = []
        for key in (1, 2, 3, 4):
            result = await client.call_tool(
                "execute_query", {"query": f"SELECT id, body FROM {table} WHERE id = {key}"}
            )
            assert not result.is_error, result.content
            rows.append(result.structured_content["rows"])
        ranged = await client.call_tool(
            "execute_query", {"query": f"SELECT id FROM {table} WHERE id >= 2 AND small < 3 ORDER BY id"}
        )
        ranged2 = await client.call_tool(
            "execute_query", {"query": f"SELECT id FROM {table} WHERE id >= 1 AND small < 4 ORDER BY id"}
        )
        with_param = await client.call_tool(
            "execute_query",
            {"query": f"SELECT id FROM {table} WHERE id = :k AND small = 2", "parameters": {"k": 2}},
        )
    assert rows == [[[1, "one"]], [[2, "two"]], [[3, "three"]], []]
    assert ranged.structured_content["rows"] == [[2]]
    assert ranged2.structured_content["rows"] == [[1], [2], [3]]
    assert with_param.structured_content["rows"] == [[2]]
