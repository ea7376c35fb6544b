"""Streamed fetch under the budget (issue 12): rows are converted and sized as they
arrive; the fetch stops at max_rows or max_result_bytes, whichever comes first; any
single value is cut at max_value_bytes with a visible marker and counted."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlgate.db.results import RowBudget
from tests.conftest import Backend, unique

WIDE = {
    "sqlite": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, body TEXT, data BLOB)",
    "postgres": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, body TEXT, data BYTEA)",
    "mysql": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, body LONGTEXT, data LONGBLOB)",
}
FILL = {
    "sqlite": "INSERT INTO {t} SELECT value, printf('%.*c', {n}, 'x'), zeroblob(1000) FROM "
              "(WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < {rows}) "
              "SELECT value FROM s)",
    "postgres": "INSERT INTO {t} SELECT g, repeat('x', {n}), decode(repeat('00', 1000), 'hex') "
                "FROM generate_series(1, {rows}) g",
    "mysql": "INSERT INTO {t} SELECT seq, REPEAT('x', {n}), REPEAT(X'00', 1000) FROM seq_1_to_{rows}",
}


@pytest.fixture(scope="module")
def wide(backend: Backend) -> str:
    table = unique("wide")
    backend.execute(WIDE[backend.name].format(t=table), FILL[backend.name].format(t=table, n=200_000, rows=40))
    return table


def body(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return dict(result.structured_content)


async def test_a_long_value_is_cut_with_a_marker_and_counted(backend: Backend, wide: str) -> None:
    async with backend.client(allowed_tables=[wide]) as client:
        out = body(await client.call_tool(
            "execute_query", {"query": f"SELECT id, body FROM {wide} WHERE id = 1"}))
    value = out["rows"][0][1]
    assert value.startswith("x" * 1000)
    assert "[sqlgate: cut at 65536 bytes; " in value
    assert len(value.encode()) < 65536 + 100
    assert out["truncated_values"] == 1
    assert out["truncated"] is False


async def test_the_byte_budget_stops_the_fetch_and_says_so(backend: Backend, wide: str) -> None:
    async with backend.client(allowed_tables=[wide]) as client:
        out = body(await client.call_tool("execute_query", {"query": f"SELECT id, body FROM {wide} ORDER BY id"}))
        # the connection (or its replacement) answers the next call
        again = body(await client.call_tool("execute_query", {"query": f"SELECT count(*) FROM {wide}"}))
    assert out["truncated"] is True
    assert 1 <= out["row_count"] <= 4  # 256 KiB of 64 KiB values
    assert len(json.dumps(out["rows"])) <= 256 * 1024
    assert out["truncated_values"] == out["row_count"]
    assert again["rows"] == [[40]]


async def test_bytes_are_cut_and_the_value_setting_applies(backend: Backend, wide: str) -> None:
    async with backend.client(allowed_tables=[wide], max_value_bytes=512) as client:
        out = body(await client.call_tool("execute_query", {"query": f"SELECT data FROM {wide} WHERE id = 2"}))
    value = out["rows"][0][0]
    assert value.startswith("base64:AAAA")
    assert "[sqlgate: cut at 512 bytes; " in value and len(value) < 700
    assert out["truncated_values"] == 1


async def test_max_rows_still_cuts_before_the_budget(backend: Backend, wide: str) -> None:
    async with backend.client(allowed_tables=[wide]) as client:
        out = body(await client.call_tool(
            "execute_query", {"query": f"SELECT id FROM {wide} ORDER BY id", "max_rows": 7}))
    assert out["rows"] == [[i] for i in range(1, 8)]
    assert out["truncated"] is True
    assert "truncated_values" not in out


async def test_a_first_row_wider_than_the_budget_is_cut_to_fit(backend: Backend, wide: str) -> None:
    columns = ", ".join(f"body AS b{i}" for i in range(8))
    async with backend.client(allowed_tables=[wide]) as client:
        out = body(await client.call_tool(
            "execute_query", {"query": f"SELECT {columns} FROM {wide} WHERE id = 3"}))
    assert out["row_count"] == 1
    assert len(json.dumps(out["rows"][0], ensure_ascii=False)) <= 256 * 1024
    assert out["truncated_values"] == 8


def test_the_budget_converts_as_before_and_cuts_every_kind_of_value() -> None:
    import datetime as dt
    from decimal import Decimal

    from sqlgate.db.results import RowBudget

    budget = RowBudget(10, 256 * 1024, 1024)
    big_json = {"k": ["v" * 100] * 50}
    assert budget.take([
        (1, float("nan"), Decimal("1.50"), dt.date(2024, 1, 31), None, True, b"\x00\x01"),
        ("é" * 2000, b"\x00" * 5000, big_json, {"small": 1}, "x" * 1024, "y" * 1025, 0),
    ])
    first, second = budget.rows
    assert first == [1, "NaN", 1.5, "2024-01-31", None, True, "base64:AAE="]
    assert second[0].startswith("é" * 512) and "[sqlgate: cut at 1024 bytes; 1488 more characters]" in second[0]
    assert len(second[0].split("…")[0].encode()) <= 1024
    assert second[1].startswith("base64:AAAA") and "more bytes]" in second[1]
    assert isinstance(second[2], str) and second[2].startswith('{"k":["vvv')
    assert second[3] == {"small": 1}
    assert second[4] == "x" * 1024 and second[5].startswith("y" * 1024) and "1 more characters" in second[5]
    assert budget.truncated_values == 4 and not budget.full


def test_the_budget_sizes_the_next_chunk_from_the_widest_row() -> None:
    from sqlgate.db.results import RowBudget

    budget = RowBudget(1000, 100_000, 65_536)
    assert budget.chunk(first=2) == 2
    budget.take([("x" * 10_000,), ("y" * 20_000,)])
    assert budget.chunk() == (100_000 - budget.used) // budget.widest + 1
    assert not budget.take([("z" * 60_000,), ("w" * 20_000,)])
    assert budget.truncated_by == "max_result_bytes" and budget.more and len(budget.rows) == 3
    small = RowBudget(3, 100_000, 65_536)
    assert not small.take([(1,), (2,), (3,), (4,)]) and small.truncated_by == "max_rows"
    assert [r[0] for r in small.rows] == [1, 2, 3]


def _row_by_row(rows: list[tuple[Any, ...]], max_rows: int, max_bytes: int, max_value_bytes: int) -> RowBudget:
    """The reference: the same rows handed over one at a time (never the whole-chunk path)."""
    budget = RowBudget(max_rows, max_bytes, max_value_bytes)
    budget._take_each(rows)
    return budget


_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=60),
    st.binary(max_size=40), st.decimals(allow_nan=False, places=3), st.decimals(), st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())), st.times(), st.uuids(),
)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.tuples(_VALUES, _VALUES, _VALUES), max_size=40),
    max_rows=st.integers(1, 50),
    max_bytes=st.integers(1, 3000),
    max_value_bytes=st.one_of(st.integers(8, 200), st.just(65_536)),
    chunk=st.integers(1, 45),
)
def test_whole_chunks_keep_exactly_what_row_by_row_keeps(
    rows: list[tuple[Any, ...]], max_rows: int, max_bytes: int, max_value_bytes: int, chunk: int
) -> None:
    """A chunk taken in one go (the fast path) keeps the same rows, cuts the same values
    and stops for the same reason as the rows taken one by one."""
    budget = RowBudget(max_rows, max_bytes, max_value_bytes)
    for start in range(0, len(rows), chunk):
        if not budget.take(rows[start:start + chunk]) and budget.full:
            break
    reference = _row_by_row(rows, max_rows, max_bytes, max_value_bytes)
    assert budget.rows == reference.rows
    assert (budget.truncated_by, budget.truncated_values, budget.used) == (
        reference.truncated_by, reference.truncated_values, reference.used
    )


@settings(max_examples=500, deadline=None)
@given(value=st.one_of(st.decimals(), st.decimals(places=2, min_value=-10**12, max_value=10**12)))
def test_the_short_decimal_path_decides_as_the_general_rule(value: Decimal) -> None:
    from sqlgate.db.results import _general_decimal, _short_decimal, to_json_safe

    expected = _general_decimal(value)
    short = _short_decimal(value)
    assert short is None or (type(short), repr(short)) == (type(expected), repr(expected))
    converted = to_json_safe(value)
    assert (type(converted), repr(converted)) == (type(expected), repr(expected))


_SIZED_VALUES = st.one_of(
    st.none(), st.integers(), st.text(max_size=80), st.binary(max_size=80),
    st.builds(bytearray, st.binary(max_size=30)), st.decimals(allow_nan=False), st.dates(),
)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(_SIZED_VALUES, _SIZED_VALUES, _SIZED_VALUES), min_size=1, max_size=30),
       one_column=st.lists(st.tuples(_SIZED_VALUES), min_size=1, max_size=30))
def test_the_chunk_width_bounds_every_row(rows: list[tuple[Any, ...]], one_column: list[tuple[Any, ...]]) -> None:
    """The next fetch is sized from a width no row of the chunk exceeds (exactly the
    widest row when there is one column)."""
    from sqlgate.db.results import _raw_size, _widest

    assert _widest(rows) >= max(map(_raw_size, rows))
    assert _widest(one_column) == max(map(_raw_size, one_column))


def test_bounded_postgres_rows_unfold_the_same_by_the_fast_path() -> None:
    """A fetched row without a long value is picked in one call; one with a long value is
    unfolded column by column: both give the statement's own columns."""
    from sqlgate.db.dialects.postgres import _Unfolding
    from sqlgate.db.results import LongBytes, LongText

    # bounded row: c0 plain | c1 value, cut, length (text) | c2 plain | c3 value, cut, length (bytea)
    unfold = (0, (1, 2, 3, False), 4, (5, 6, 7, True))
    rows = [
        (1, "short", None, None, 2.5, b"ab", None, None),
        (2, None, "abc", 9, None, None, b"\x00", 5000),
        (3, None, None, None, 7, None, None, None),
    ]
    seen: list[list[Any]] = []

    class Keep:
        def take(self, taken: list[Sequence[Any]]) -> bool:
            seen.extend(map(list, taken))
            return True

    assert _Unfolding(Keep(), unfold).take(rows)  # type: ignore[arg-type]
    assert seen[0] == [1, "short", 2.5, b"ab"] and seen[2] == [3, None, 7, None]
    assert seen[1][0] == 2 and seen[1][2] is None
    assert isinstance(seen[1][1], LongText) and seen[1][1] == "abc" and seen[1][1].total == 9
    assert isinstance(seen[1][3], LongBytes) and seen[1][3].total == 5000
    assert [list(map(type, r)) for r in seen] == [
        [type(v) for v in _Unfolding(Keep(), unfold)._unfold(row)] for row in rows  # type: ignore[arg-type]
    ]
