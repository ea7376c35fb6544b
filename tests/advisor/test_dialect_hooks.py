"""The advisor reaches databases only through the dialect hooks: no dialect-name branches,
and a dialect without an EXPLAIN hook is an error, not another database's EXPLAIN."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot

from sqlgate.advisor import capture
from sqlgate.db.dialects.base import Dialect
from sqlgate.db.dialects.mysql import MySQLDialect
from sqlgate.db.dialects.postgres import PostgresDialect
from sqlgate.db.dialects.sqlite import SQLiteDialect
from sqlgate.errors import DatabaseError

ADVISOR = Path(__file__).parent.parent.parent / "src" / "sqlgate" / "advisor"
BRANCH = re.compile(r"""(==|!=|\bin\s*\(|\bin\s*\{)[^\n#]*["'](postgresql|postgres|mysql|mariadb|sqlite|tidb)["']""")


@pytest.mark.parametrize("module", sorted(p.name for p in ADVISOR.glob("*.py")))
def test_no_dialect_name_branches_in_the_advisor(module: str) -> None:
    source = (ADVISOR / module).read_text()
    found = [line.strip() for line in source.splitlines() if BRANCH.search(line)]
    if module == "scope.py":  # identifier quoting rules of sqlglot dialects, not a database branch
        found = [line for line in found if "_LOWER if dialect" not in line]
    assert found == [], f"{module} branches on a dialect name: {found}"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_dialect_without_explain_is_an_error(anyio_backend: str) -> None:
    class Unplanned(SQLiteDialect):
        name = "unplanned"
        explain = Dialect.explain  # what a new dialect inherits until it implements the hook

    statement = sqlglot.parse_one("SELECT 1", read="sqlite")
    with pytest.raises(DatabaseError, match="does not know how to EXPLAIN on unplanned"):
        await capture.capture(Unplanned(), None, "", statement, {}, False, 1000)


def test_each_dialect_says_its_index_shapes() -> None:
    postgres = PostgresDialect().index_syntax("PostgreSQL 15.20")
    assert postgres.include and postgres.expressions and postgres.prefix_like == "pattern_ops" and postgres.costs
    sqlite = SQLiteDialect().index_syntax("3.40.1")
    assert sqlite.prefix_like == "nocase" and sqlite.expressions and not sqlite.costs
    assert MySQLDialect().index_syntax("8.0.36").expressions
    assert not MySQLDialect().index_syntax("8.0.11").expressions  # functional key parts: 8.0.13+
    assert not MySQLDialect().index_syntax("10.11.19-MariaDB-0+deb12u1").expressions
    assert not MySQLDialect().index_syntax("8.0.11-TiDB-v7.5.1").expressions
