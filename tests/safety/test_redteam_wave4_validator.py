"""Red team, wave 4: the SQL validator (safety/, tools/checking.py, db/guard.py), on the real servers.

Every probe goes through a real MCP client to a real server (the shop and the probe of
``test_redteam_wave3``: ``c`` holds known secrets in its denied columns, ``h`` is not
whitelisted); no secret may appear anywhere in a result and every probe must be refused.

Found and fixed in this wave (regressions below):
- PostgreSQL whole-row references resolved against the wrong names: a bare ``k`` inside a
  LATERAL subquery or a table function's arguments counted as that FROM item's own output
  column ``k`` (``FROM c k, LATERAL (SELECT k) x`` — PostgreSQL reads the whole row of
  ``c k``), as a column of a FROM item written after it (``JOIN ... ON k::text LIKE ...
  CROSS JOIN (SELECT 1 AS k) z``), or as a quoted column of another case (``"K"`` is not
  ``k``). Each returned every denied value (``to_jsonb(x)``, ``x.k::text``, ``u.*``).
"""

from __future__ import annotations

import pytest

from tests.conftest import Backend
from tests.safety.test_redteam_wave3 import make_shop, probe, settings, text_of

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def postgres_shop(postgres_backend: Backend) -> dict[str, str]:
    return make_shop(postgres_backend)


# ------------------------------------------- 1. whole rows behind a name that is not in scope

def whole_rows_out_of_scope(c: str, o: str) -> list[str]:
    return [
        # the FROM item's own output name: not in scope inside its own body
        f"SELECT to_jsonb(x) FROM {c} k, LATERAL (SELECT k) x",
        f"SELECT x.k::text FROM {c} k, LATERAL (SELECT k) x",
        f"SELECT x.k FROM {c} k JOIN LATERAL (SELECT to_jsonb(k) AS k) x ON true",
        f"SELECT x.k FROM {c} k, LATERAL (SELECT row_to_json(k) AS k) x",
        f"SELECT v FROM {c} k CROSS JOIN LATERAL (SELECT k::text AS k) x(v)",
        f"SELECT u.* FROM {c} k, unnest(ARRAY[k]) AS u(k)",
        f"SELECT to_jsonb(u) FROM {c} k, unnest(ARRAY[k]) AS u(k)",
        f"SELECT u.k::text FROM {c} k, LATERAL unnest(ARRAY[k]) AS u(k)",
        # a FROM item written after the reference
        f"SELECT x.j FROM {c} k, LATERAL (SELECT k::text AS j) x, (SELECT 1 AS k) z",
        f"SELECT k.name FROM {c} k JOIN {o} r ON k::text LIKE '%SECRET-5150%' CROSS JOIN (SELECT 1 AS k) z",
        # a quoted name of another case is another name
        f'SELECT k::text FROM {c} k, (SELECT 1 AS "K") z',
        f'SELECT k::text FROM {c} k, (SELECT 1) AS z("K")',
        f'SELECT "k"::text FROM {c} k, (SELECT 1 AS "K") z',
        f"SELECT name FROM {c} k, (SELECT 1 AS \"K\") z WHERE k::text LIKE '%SECRET-5150%'",
    ]


async def test_whole_rows_behind_names_out_of_scope_are_refused(
        postgres_backend: Backend, postgres_shop: dict[str, str]) -> None:
    """Regression: these returned the denied columns on PostgreSQL."""
    shop = postgres_shop
    bad = await probe(postgres_backend, shop, whole_rows_out_of_scope(shop["c"], shop["o"]),
                      codes=("COLUMN_NOT_ALLOWED",))
    assert not bad, bad


async def test_names_in_scope_still_resolve(postgres_backend: Backend, postgres_shop: dict[str, str]) -> None:
    """A column of an earlier FROM item, a LATERAL over allowed columns, ON over both sides."""
    c, o = postgres_shop["c"], postgres_shop["o"]
    async with postgres_backend.client(**settings(postgres_shop)) as client:
        for sql, rows in (
            (f"SELECT z.j FROM {c} k, (SELECT 1 AS k) y, LATERAL (SELECT k::text AS j) z ORDER BY k.id",
             [["1"], ["1"]]),
            (f"SELECT k.name, x.n FROM {c} k, LATERAL (SELECT count(*) AS n FROM {o} r "
             "WHERE r.customer_id = k.id) x ORDER BY k.id", [["Alice", 1], ["Bob", 1]]),
            (f"SELECT k.name FROM {c} k JOIN {o} r ON customer_id = k.id ORDER BY k.id", [["Alice"], ["Bob"]]),
            (f'SELECT "K" FROM {c} k, (SELECT 7 AS "K") z ORDER BY k.id', [[7], [7]]),
        ):
            result = await client.call_tool("execute_query", {"query": sql})
            assert not result.is_error, (sql, text_of(result))
            assert result.structured_content["rows"] == rows, sql
