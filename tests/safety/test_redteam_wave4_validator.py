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
- Arguments the tree did not hold: the SQL sent is written from the tokens, but some of
  sqlglot's function builders drop arguments past the ones they model or turn a name into
  a keyword. PostgreSQL ``date_part(ssn, now())`` / ``date_trunc(ssn, now())`` read the
  column (sqlglot held the unit ``SSN``) and the error message showed its value; MariaDB
  ``DATE_FORMAT(now(), '%M', IF((SELECT secret FROM h) ...), 'de_DE', 'en_US'))`` ran a
  subquery on a table outside the whitelist (sqlglot kept two arguments) and the month's
  language answered it. Each call's written arguments must now be in the checked tree
  (``safety.arguments``).
"""

from __future__ import annotations

import pytest

from sqlgate import safety
from sqlgate.safety import Policy
from tests.conftest import Backend
from tests.safety.test_redteam_wave3 import SECRETS, code_of, make_shop, probe, settings, text_of

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def shop(backend: Backend) -> dict[str, str]:
    return make_shop(backend)


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


# ------------------------------------------- 2. arguments sqlglot dropped or read as keywords

def unread_arguments(backend: str, c: str, o: str, h: str) -> list[str]:
    found = [f"SELECT mod(id, 3, ssn) FROM {c}", f"SELECT id FROM {o} WHERE mod(id, 3, (SELECT secret FROM {h})) = 1"]
    if backend == "postgres":
        found += [
            f"SELECT date_part(ssn, now()) FROM {c}",
            f"SELECT date_trunc(api_key, now()) FROM {c}",
            f"SELECT date_trunc(ssn, now(), 'UTC') FROM {c}",
            f"SELECT name FROM {c} WHERE date_part(ssn, now()) IS NULL",
            f'SELECT date_part("ssn", now()) FROM {c}',
            f"SELECT date_bin(interval '1 day', now(), ssn) FROM {c}",
            f"SELECT date_part(secret, now()) FROM {o}, {h}",
        ]
    if backend == "mysql":
        found += [
            f"SELECT DATE_FORMAT(now(), '%M', IF((SELECT secret FROM {h}) LIKE 'HIDDEN%', 'de_DE', 'en_US'))",
            f"SELECT DATE_FORMAT(now(), '%M', ssn) FROM {c}",
            f"SELECT name FROM {c} WHERE DATE_FORMAT(now(), '%M', api_key) IS NULL",
            f"SELECT length(name, ssn) FROM {c}",
            f"SELECT name FROM {c} WHERE isnull(name, ssn)",
            f"SELECT TO_DAYS(now(), (SELECT secret FROM {h}))",
        ]
    if backend == "sqlite":
        found += [f"SELECT glob(name, email, ssn) FROM {c}", f"SELECT hex(name, (SELECT secret FROM {h})) FROM {c}"]
    return found


async def test_arguments_the_validator_did_not_read_are_refused(backend: Backend, shop: dict[str, str]) -> None:
    """Regression: date_part(ssn, ...) showed the value in PostgreSQL's error message (lower-cased:
    the check below looks for it in any case); MariaDB's third DATE_FORMAT argument ran a query
    on a table outside the whitelist."""
    async with backend.client(**settings(shop)) as client:
        for sql in unread_arguments(backend.name, shop["c"], shop["o"], shop["h"]):
            result = await client.call_tool("execute_query", {"query": sql})
            text = text_of(result).lower()
            assert result.is_error and code_of(result) == "PARSE_ERROR", (sql, text[:300])
            assert not any(secret.lower() in text for secret in SECRETS), (sql, text[:300])


async def test_calls_with_keyword_and_literal_arguments_still_work(backend: Backend, shop: dict[str, str]) -> None:
    o = shop["o"]
    queries = {
        "postgres": [f"SELECT date_part('year', DATE '2024-03-01') AS y, date_trunc('month', DATE '2024-03-05') AS m, "
                     f"EXTRACT(day FROM DATE '2024-03-05') AS d, normalize('x', NFC) AS n FROM {o} WHERE id = 10"],
        "mysql": [f"SELECT TIMESTAMPDIFF(DAY, '2024-01-01', '2024-02-01') AS d, DATE_SUB('2024-01-10', INTERVAL 7 DAY) AS s, "
                  f"DATE_FORMAT('2024-12-01', '%M', 'de_DE') AS m, MOD(total, 7) AS r FROM {o} WHERE id = 10",
                  f"SELECT GROUP_CONCAT(id ORDER BY id SEPARATOR ',') AS ids, CONVERT('x' USING utf8mb4) AS x FROM {o}"],
        "sqlite": [f"SELECT mod(total, 7) AS r, glob('1*', total) AS g, strftime('%Y', '2024-03-01') AS y FROM {o} "
                   "WHERE id = 10"],
    }[backend.name]
    async with backend.client(**settings(shop)) as client:
        for sql in queries:
            result = await client.call_tool("execute_query", {"query": sql})
            assert not result.is_error, (sql, text_of(result))


@pytest.mark.parametrize(("dialect", "sql"), [
    ("postgres", "SELECT date_part(ssn, now()) FROM customers"),
    ("postgres", "SELECT date_trunc(ssn, now()) FROM customers"),
    ("mysql", "SELECT length(name, ssn) FROM customers"),
    ("mysql", "SELECT DATE_FORMAT(now(), '%M', (SELECT secret FROM secrets))"),
    ("sqlite", "SELECT mod(1, 2, (SELECT secret FROM secrets))"),
])
def test_offline_check_refuses_unread_arguments(dialect: str, sql: str) -> None:
    policy = Policy(allowed_tables=("customers",), denied_columns=("customers.ssn",))
    with pytest.raises(safety.PolicyViolation) as denied:
        safety.check(sql, dialect, policy)
    assert denied.value.code == "PARSE_ERROR"
