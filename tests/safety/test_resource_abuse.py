"""Resource abuse: huge, deep or wide SQL gets a clean denial, and the server survives it.

The compiled sqlglot parser can take the process down on very deep input instead of
raising RecursionError, so these shapes must be refused before parsing. The last test
sends them through a real MCP client to a real server and then asks a normal question.
"""

from __future__ import annotations

import pytest

from sqlgate import safety
from sqlgate.errors import PolicyViolation
from sqlgate.safety.policy import Policy
from tests.conftest import Backend, unique

BIG = Policy(allowed_tables=("orders",), max_query_length=50_000_000)

PATHOLOGICAL = {
    "deep-parens": "SELECT " + "(" * 100_000 + "1" + ")" * 100_000,
    "deep-case": "SELECT " + "CASE WHEN 1=1 THEN " * 5_000 + "1" + " END" * 5_000,
    "not-chain": "SELECT 1 WHERE " + "NOT " * 50_000 + "TRUE",
    "minus-chain": "SELECT " + "- " * 50_000 + "1",
    "cast-chain": "SELECT 1" + "::int" * 20_000,
    "deep-subqueries": "SELECT * FROM " + "(SELECT * FROM " * 3_000 + "orders" + ") AS s" * 3_000,
    "union-branches": " UNION ".join(["SELECT 1"] * 5_000),
    "huge-in-list": "SELECT id FROM orders WHERE id IN (" + ",".join(["1"] * 200_000) + ")",
    "many-joins": "SELECT 1 FROM orders " + " ".join(f"JOIN orders o{i} ON 1=1" for i in range(5_000)),
    "unclosed-parens": "SELECT " + "(" * 200_000,
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
def test_pathological_query_is_a_clean_denial(name: str, dialect: str) -> None:
    with pytest.raises(PolicyViolation) as denied:
        safety.check(PATHOLOGICAL[name], dialect, BIG)
    assert denied.value.code in ("QUERY_TOO_COMPLEX", "PARSE_ERROR"), denied.value.message
    assert denied.value.hint


def test_giant_text_is_too_large() -> None:
    with pytest.raises(PolicyViolation) as denied:
        safety.check("SELECT '" + "x" * 10_000_000 + "'", "postgres", Policy(allowed_tables=("orders",)))
    assert denied.value.code == "QUERY_TOO_LARGE"


def test_wide_but_reasonable_queries_pass() -> None:
    in_list = "SELECT id FROM orders WHERE id IN (" + ",".join(str(i) for i in range(2_000)) + ")"
    assert safety.check(in_list, "postgres", BIG).statement_kind == "select"
    unions = " UNION ALL ".join(["SELECT id FROM orders"] * 200)
    assert safety.check(unions, "mysql", BIG).statement_kind == "union"


def test_check_deep_inside_a_python_stack_never_raises_recursion_error() -> None:
    sql = "SELECT " + "(" * 60 + "1" + ")" * 60 + " FROM orders"

    def nested(levels: int) -> object:
        if levels:
            return nested(levels - 1)
        try:
            return safety.check(sql + " /* deep */", "sqlite", BIG)
        except PolicyViolation as violation:
            return violation

    import sys

    outcome = nested(sys.getrecursionlimit() - 150)
    assert isinstance(outcome, (PolicyViolation, safety.Verdict))


async def test_server_survives_pathological_queries(sqlite_backend: Backend) -> None:
    table = unique("sfab")
    await sqlite_backend.aexecute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)", f"INSERT INTO {table} VALUES (7)")
    async with sqlite_backend.client(allowed_tables=table, max_query_length=50_000_000) as client:
        for name, sql in sorted(PATHOLOGICAL.items()):
            result = await client.call_tool("execute_query", {"query": sql})
            assert result.is_error, name
            assert result.structured_content["error"]["code"] in ("QUERY_TOO_COMPLEX", "PARSE_ERROR"), name
        result = await client.call_tool("execute_query", {"query": f"SELECT id FROM {table}"})
        assert not result.is_error
        assert result.structured_content["rows"] == [[7]]


async def test_stdio_server_with_huge_recursion_limit_survives(sqlite_backend: Backend, tmp_path: object) -> None:
    """The hard case: a server process whose recursion limit is so high that the compiled
    parser would overflow the C stack (segfault) on deep input before Python noticed.
    The pre-parse guards must keep such input away from the parser entirely."""
    import sys

    from mcp import Client, StdioServerParameters

    table = unique("sfab")
    await sqlite_backend.aexecute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)", f"INSERT INTO {table} VALUES (8)")
    launcher = (
        "import sys; sys.setrecursionlimit(1_000_000); from sqlgate.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", launcher, "serve", "--database-url", sqlite_backend.url, "--allowed-tables", table,
              "--max-query-length", "50000000", "--data-dir", str(tmp_path), "--log-level", "WARNING",
              "--no-audit-enabled"],
    )
    async with Client(params) as client:
        for name, sql in sorted(PATHOLOGICAL.items()):
            result = await client.call_tool("execute_query", {"query": sql})
            assert result.is_error, name
            assert result.structured_content["error"]["code"] in ("QUERY_TOO_COMPLEX", "PARSE_ERROR"), name
        result = await client.call_tool("execute_query", {"query": f"SELECT id FROM {table}"})
        assert result.structured_content["rows"] == [[8]]
