"""Red team, wave 3b: a second pass on the families wave 3 did not go deep on, on the real server.

Every probe goes through a real MCP client (``backend.client``) to a real server on SQLite,
PostgreSQL and MariaDB. ``c`` holds known secrets in its denied columns, ``h`` and the
one-column ``h1`` are not whitelisted; no secret may appear anywhere in a result (content,
structured content, error message or hint), and writes in read_only leave the data as it was.

Found and fixed in this pass (regression below):
- SQLite reads ``x IN name`` (no parentheses) as ``x IN (SELECT * FROM name)``, and sqlglot
  reads the name as a column: ``SELECT id FROM o WHERE 'HIDDEN…' IN h1`` ran against the
  non-whitelisted ``h1`` (a membership oracle on its values). ``IN`` followed by a bare name
  or call is now refused on every dialect; the parenthesised forms are resolved as before.

The other families (parser differentials, error and side channels, parameters, the other
tools) are replayed below: all were refused or harmless.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sqlgate import safety
from sqlgate.safety import Policy
from tests.conftest import Backend, unique

pytestmark = pytest.mark.anyio

SECRET = "SECRET-6021-7734"
KEY = "APIKEY-8812-4490"
HIDDEN = "HIDDEN-3355-1029"
SECRETS = (SECRET, KEY, HIDDEN)


@pytest.fixture(scope="session")
def shop(backend: Backend) -> dict[str, str]:
    return make_shop(backend)


@pytest.fixture(scope="session")
def sqlite_shop(sqlite_backend: Backend) -> dict[str, str]:
    return make_shop(sqlite_backend)


def make_shop(backend: Backend) -> dict[str, str]:
    key = "redteam3b_shop"
    if key not in backend.extra:
        c, o, h, h1 = unique("rbcust"), unique("rbord"), unique("rbhid"), unique("rbone")
        backend.execute(
            f"CREATE TABLE {c} (id INTEGER PRIMARY KEY, name VARCHAR(30), email VARCHAR(60), "
            "ssn VARCHAR(30), api_key VARCHAR(30))",
            f"CREATE TABLE {o} (id INTEGER PRIMARY KEY, customer_id INTEGER, total INTEGER)",
            f"CREATE TABLE {h} (id INTEGER PRIMARY KEY, secret VARCHAR(30))",
            f"CREATE TABLE {h1} (secret VARCHAR(30))",
            f"INSERT INTO {c} VALUES (1, 'Alice', 'a@x', '{SECRET}', '{KEY}'), (2, 'Bob', 'b@x', '{SECRET}', '{KEY}')",
            f"INSERT INTO {o} VALUES (10, 1, 100), (11, 2, 250)",
            f"INSERT INTO {h} VALUES (1, '{HIDDEN}')",
            f"INSERT INTO {h1} VALUES ('{HIDDEN}')",
        )
        backend.extra[key] = {"c": c, "o": o, "h": h, "h1": h1}
    return dict(backend.extra[key])


def settings(shop: dict[str, str], mode: str = "read_only") -> dict[str, Any]:
    return {"mode": mode, "allowed_tables": f"{shop['c']},{shop['o']}",
            "denied_columns": f"{shop['c']}.ssn,{shop['c']}.api_key"}


def text_of(result: Any) -> str:
    parts = [getattr(item, "text", "") for item in result.content]
    parts.append(json.dumps(result.structured_content, default=str))
    return "\n".join(parts)


def code_of(result: Any) -> str | None:
    if not result.is_error or not result.structured_content:
        return None
    return str(result.structured_content["error"]["code"])


async def probe(backend: Backend, shop: dict[str, str], calls: list[tuple[str, dict[str, Any]]],
                mode: str = "read_only", refused: bool = True) -> list[tuple[str, str]]:
    """The calls that showed a secret, or (``refused``) that were not refused by sqlgate."""
    bad: list[tuple[str, str]] = []
    async with backend.client(**settings(shop, mode)) as client:
        for tool, arguments in calls:
            result = await client.call_tool(tool, arguments)
            text = text_of(result)
            if any(s in text for s in SECRETS):
                bad.append((json.dumps(arguments), "LEAK " + text[:300]))
            elif refused and (not result.is_error or code_of(result) in (None, "DB_ERROR")):
                bad.append((json.dumps(arguments), text[:300]))
    return bad


def queries(*sql: str) -> list[tuple[str, dict[str, Any]]]:
    return [("execute_query", {"query": s}) for s in sql]


# ----------------------------------------------------- SQLite: x IN table (found here)

def in_a_bare_name(h1: str, h: str, c: str, o: str) -> list[str]:
    guess = "'HIDDEN-3355-' || '1029'"  # not the secret as written: refusals echo the query
    return [
        f"SELECT id FROM {o} WHERE ({guess}) IN {h1}",
        f"SELECT count(*) FROM {o} WHERE ({guess}) NOT IN {h1}",
        f"SELECT id FROM {o} WHERE ({guess}) IN main.{h1}",
        f"SELECT id FROM {o} WHERE ({guess}) IN \"{h1}\"",
        f"SELECT id FROM {o} WHERE ({guess}) IN [{h1}]",
        f"SELECT (({guess}) IN {h1}) FROM {o}",
        f"SELECT CASE WHEN ({guess}) IN {h1} THEN 1 ELSE 0 END FROM {o}",
        f"SELECT id FROM {o} WHERE id IN {h}",
        f"SELECT name FROM {c} WHERE ({guess}) IN {c}",
        f"SELECT id FROM {o} WHERE ({guess}) IN json_each((SELECT secret FROM {h1}))",
        f"SELECT id FROM {o} WHERE 1 IN pragma_table_info('{h}')",
        f"WITH x AS (SELECT secret FROM {h1}) SELECT id FROM {o} WHERE ({guess}) IN x",
    ]


async def test_sqlite_in_a_bare_table_name_is_refused(sqlite_backend: Backend, sqlite_shop: dict[str, str]) -> None:
    """Regression: ``'v' IN h1`` read the non-whitelisted table h1 on SQLite."""
    shop = sqlite_shop
    bad = await probe(sqlite_backend, shop, queries(*in_a_bare_name(shop["h1"], shop["h"], shop["c"], shop["o"])))
    assert not bad, bad


async def test_in_with_parentheses_still_works(backend: Backend, shop: dict[str, str]) -> None:
    o = shop["o"]
    async with backend.client(**settings(shop)) as client:
        for sql in (f"SELECT id FROM {o} WHERE id IN (10, 12) ORDER BY id",
                    f"SELECT id FROM {o} WHERE id IN (SELECT id FROM {o} WHERE total < 200) ORDER BY id",
                    f"SELECT id FROM {o} WHERE 100 IN (total) ORDER BY id"):
            result = await client.call_tool("execute_query", {"query": sql})
            assert not result.is_error, (sql, text_of(result))
            assert result.structured_content["rows"] == [[10]]


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql"])
def test_offline_check_refuses_in_a_bare_name(dialect: str) -> None:
    policy = Policy(allowed_tables=("orders",))
    for sql in ("SELECT id FROM orders WHERE 'x' IN secrets", "SELECT id FROM orders WHERE 'x' IN main.secrets",
                "SELECT id FROM orders WHERE 1 IN json_each('[1]')"):
        with pytest.raises(safety.PolicyViolation):
            safety.check(sql, dialect, policy)


# ------------------------------------------------------------- 1. parser differentials

def differentials(backend: str, c: str, o: str, h: str) -> list[str]:
    found = [
        f"SELECT name FROM {c} WHERE id = 1--1\n AND ssn > ''",
        f"SELECT name FROM {c} WHERE id = 1 -- x\n AND ssn > ''",
        f"SELECT name FROM {c} WHERE id = 1 /* x */ AND ssn > ''",
        f"SELECT name FROM {c} WHERE ssn\u00a0LIKE 'S%'",
        f"SELECT name\u3000FROM {c} WHERE ssn > ''",
        f"SELECT {c}.\u015bsn FROM {c}",
        f"SELECT name FROM {c} WHERE ssn = 'a' 'b'",
        f"SELECT 1 FROM {o} WHERE 1 = 1 /* unterminated",
        f"SELECT * FROM {h} /* {o} */",
        f"SELECT name FROM {c} WHERE '?' = ? AND ssn > ''",
        f"SELECT 1e1e1 FROM {c} WHERE ssn > ''",
        f"SELECT .1.1 FROM {c} ORDER BY ssn",
    ]
    if backend == "postgres":
        found += [
            f"SELECT name FROM {c} WHERE ssn = $$x$$",
            f"SELECT name FROM {c} WHERE ssn = $t$x$t$",
            f"SELECT $a$ $$ $a$, ssn FROM {c}",
            f"SELECT E'\\'' || ssn FROM {c}",
            f"SELECT 'a\\' || ssn FROM {c} --'",
            f"SELECT U&'\\0041' UESCAPE '!' , ssn FROM {c}",
            f"SELECT U&\"\\0073sn\" FROM {c}",
            f"SELECT U&\"!0073sn\" UESCAPE '!' FROM {c}",
            f"SELECT B'101', X'1F', ssn FROM {c}",
            f"SELECT \"ssn\" FROM {c}",
            f"SELECT name FROM {c} WHERE ssn #> '{{}}' IS NULL",
            f"SELECT 1 FROM {c} WHERE ssn ~ '('",
            f"SELECT ssn::int FROM {c}",
        ]
    if backend == "mysql":
        found += [
            f"SELECT name FROM {c} WHERE id = 1 #\n AND ssn > ''",
            f"SELECT name FROM {c} WHERE ssn = 'a\\'' OR ssn > '' -- '",
            f"SELECT name FROM {c} WHERE ssn = \"x\"\"y\" OR ssn > ''",
            f"SELECT `ssn` FROM {c}",
            f"SELECT N'x', ssn FROM {c}",
            f"SELECT _utf8mb4'x', ssn FROM {c}",
            f"SELECT 0x41, x'41', b'1', ssn FROM {c}",
            f"SELECT {{fn ucase(ssn)}} FROM {c}",
            f"SELECT {{x ssn}} FROM {c}",
            f"SELECT \\N, ssn FROM {c}",
            f"SELECT 1 /*!50000 , (SELECT secret FROM {h}) */",
            f"SELECT 1 /*+ SET_VAR(sql_mode='') */, ssn FROM {c}",
            f"SELECT name FROM {c} ORDER BY ssn COLLATE utf8mb4_bin",
        ]
    if backend == "sqlite":
        found += [
            f"SELECT \"ssn\" FROM {c}",
            f"SELECT [ssn] FROM {c}",
            f"SELECT name FROM {c} WHERE \"ssn\" IS NOT 'x'",
            f"SELECT rowid, oid, _rowid_ FROM {c} WHERE ssn > ''",
            f"SELECT name FROM {c} WHERE ssn LIKE 'S%' ESCAPE '\\'",
        ]
    return found


def harmless_differentials(c: str, o: str, h: str) -> list[str]:
    """Names no database resolves to the denied column (MariaDB compares column names
    without folding accents or width here), and nested comments that PostgreSQL and
    sqlglot both read as one comment: these run or fail in the database, showing nothing."""
    return [
        f"SELECT name FROM {c} ORDER BY \u015bsn",
        f"SELECT \uff53sn FROM {c}",
        f"SELECT ss\u200dn FROM {c}",
        f"SELECT \u017fsn FROM {c}",
        f"SELECT \u00e0pi_key FROM {c}",
        f"SELECT name FROM {c} WHERE id = 1 /* /* */ AND ssn > '' */",
        f"SELECT 1 /* /* */ , (SELECT secret FROM {h}) */",
        f"SELECT id FROM {o} /* /* nested */ , {h} */",
        f"SELECT `s``sn` FROM {c}",
    ]


async def test_parser_differentials_do_not_reach_a_denied_column(backend: Backend, shop: dict[str, str]) -> None:
    c, o, h = shop["c"], shop["o"], shop["h"]
    bad = await probe(backend, shop, queries(*differentials(backend.name, c, o, h)))
    bad += await probe(backend, shop, queries(*harmless_differentials(c, o, h)), refused=False)
    assert not bad, bad


# ------------------------------------------------- 2. error and side channels

def side_channels(backend: str, c: str, o: str, h: str) -> list[str]:
    found = [
        f"SELECT CASE WHEN ssn LIKE 'S%' THEN 1/0 ELSE 1 END FROM {c}",
        f"SELECT name FROM {c} ORDER BY length(ssn)",
        f"SELECT name FROM {c} GROUP BY name, substr(ssn, 1, 1)",
        f"SELECT name FROM {c} LIMIT (SELECT count(*) FROM {c} WHERE ssn LIKE 'S%')",
        f"SELECT name FROM {c} WHERE (id, ssn) > (1, 'A')",
        f"SELECT name FROM {c} WHERE (1, 'x') IN (SELECT id, ssn FROM {c})",
        f"SELECT name FROM {c} WHERE 'S' < ANY (SELECT ssn FROM {c})",
        f"SELECT name FROM {c} WHERE 'S' > ALL (SELECT api_key FROM {c})",
        f"SELECT 'x' EXCEPT SELECT ssn FROM {c}",
        f"SELECT 'x' INTERSECT SELECT secret FROM {h}",
        f"WITH t(ssn) AS (SELECT 'x') SELECT t.ssn FROM t NATURAL JOIN {c}",
        f"WITH t(ssn) AS (SELECT 'x') SELECT 1 FROM t JOIN {c} USING (ssn)",
        f"SELECT 1 FROM {o} WHERE customer_id IN (SELECT id FROM {h})",
        f"SELECT 1 FROM {o} r WHERE EXISTS (SELECT 1 FROM {c} k WHERE k.id = r.customer_id AND k.ssn > 'R')",
        f"SELECT name AS x FROM {c} ORDER BY ssn",
        f"SELECT name FROM {c} HAVING ssn > ''",
        f"SELECT sum(id) OVER (PARTITION BY ssn) FROM {c}",
        f"SELECT sum(id) OVER (ORDER BY api_key ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM {c}",
        f"SELECT count(*) FROM {c} GROUP BY ssn",
        f"SELECT * FROM (VALUES ('x')) v(x) WHERE x IN (SELECT ssn FROM {c})",
    ]
    if backend == "postgres":
        found += [
            f"SELECT DISTINCT ON (ssn) name FROM {c}",
            f"SELECT to_number(ssn, '9') FROM {c}",
            f"SELECT make_date(2020, ssn::int, 1) FROM {c}",
            f"SELECT format('%s', k) FROM {c} k",
            f"SELECT count(*) FILTER (WHERE ssn LIKE 'S%') FROM {c}",
            f"SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ssn) FROM {c}",
            f"SELECT name FROM {c} TABLESAMPLE SYSTEM (100) WHERE ssn > ''",
            f"SELECT ssn(k) FROM {c} k",
            f"SELECT api_key(k) FROM {c} k",
            f"SELECT text(k) FROM {c} k",
            f"SELECT k IS NULL FROM {c} k",
            f"SELECT name FROM {c} k WHERE k > ROW(1, 'a', 'b', 'c', 'd')",
            f"SELECT hashtext(k::text) FROM {c} k",
            f"SELECT name FROM {c} k GROUP BY k",
            f"SELECT array_agg(k) FROM {c} k",
            f"SELECT count(*) FROM {c} GROUP BY CUBE (ssn)",
            f"SELECT name FROM {c} OFFSET (SELECT length(ssn) FROM {c} LIMIT 1)",
            f"SELECT name FROM {c} FETCH FIRST (SELECT length(ssn) FROM {c} LIMIT 1) ROWS ONLY",
            f"SELECT pg_sleep(CASE WHEN ssn LIKE 'S%' THEN 1 ELSE 0 END) FROM {c}",
            f"SELECT name FROM {c} WHERE ssn COLLATE \"C\" > 'a'",
            f"SELECT name FROM {c} AS k(a, b, e, s, p) WHERE s > ''",
        ]
    if backend == "mysql":
        found += [
            f"SELECT UPDATEXML(1, CONCAT(0x7e, (SELECT api_key FROM {c} LIMIT 1)), 1)",
            f"SELECT GTID_SUBSET((SELECT ssn FROM {c} LIMIT 1), 1)",
            f"SELECT JSON_EXTRACT('{{}}', (SELECT ssn FROM {c} LIMIT 1))",
            f"SELECT EXTRACTVALUE(1, CONCAT(0x7e, (SELECT secret FROM {h} LIMIT 1)))",
            f"SELECT name FROM {c} WHERE _rowid > 0",
            f"SELECT IF(ssn LIKE 'S%', SLEEP(1), 0) FROM {c}",
            f"SELECT name FROM {c} WHERE ssn LIKE BINARY 'S%'",
            f"SELECT ELT(1, ssn) FROM {c}",
        ]
    if backend == "sqlite":
        found += [
            f"SELECT iif(ssn > '', 1, 0) FROM {c}",
            f"SELECT quote(ssn) FROM {c}",
            f"SELECT hex(api_key) FROM {c}",
            f"SELECT name FROM {c} WHERE likelihood(ssn > '', 0.5)",
        ]
    return found


async def test_error_and_side_channels_are_refused(backend: Backend, shop: dict[str, str]) -> None:
    bad = await probe(backend, shop, queries(*side_channels(backend.name, shop["c"], shop["o"], shop["h"])))
    assert not bad, bad


async def test_sqlite_rowid_is_refused_when_the_key_is_denied(sqlite_backend: Backend) -> None:
    """A denied INTEGER PRIMARY KEY is the rowid: its aliases stay denied."""
    t = unique("rbkey")
    await sqlite_backend.aexecute(f"CREATE TABLE {t} (ssn INTEGER PRIMARY KEY, name TEXT)",
                                  f"INSERT INTO {t} VALUES (60217734, 'x')")
    overrides = {"allowed_tables": t, "denied_columns": f"{t}.ssn"}
    async with sqlite_backend.client(**overrides) as client:
        for sql in (f"SELECT rowid FROM {t}", f"SELECT oid FROM {t}", f"SELECT _rowid_ FROM {t}",
                    f"SELECT name FROM {t} ORDER BY rowid", f"SELECT max(_ROWID_) FROM {t}",
                    f"SELECT count(*) FROM {t} WHERE oid > 60000000", f"SELECT \"rowid\" FROM {t}"):
            result = await client.call_tool("execute_query", {"query": sql})
            assert result.is_error and code_of(result) != "DB_ERROR", (sql, text_of(result))
            assert "60217734" not in text_of(result)


# ---------------------------------------------------------------------- 3. parameters

def parameter_calls(backend: str, c: str, o: str, h: str) -> list[tuple[str, dict[str, Any]]]:
    inj = f" UNION SELECT secret FROM {h} -- "
    ph = "$1" if backend == "postgres" else "?"
    calls: list[dict[str, Any]] = [
        {"query": f"SELECT 'x%s', :a FROM {o}", "parameters": {"a": inj}},
        {"query": f"SELECT '%s%s', :a, :b FROM {o}", "parameters": {"a": inj, "b": "'"}},
        {"query": f"SELECT '%(a)s', :a FROM {o}", "parameters": {"a": inj}},
        {"query": f"SELECT id FROM {o} WHERE ':a' = :a", "parameters": {"a": inj}},
        {"query": f"SELECT id FROM {o} WHERE CAST(id AS CHAR(10)) = :a", "parameters": {"a": "10' OR '1'='1"}},
        {"query": f"SELECT id FROM {o} WHERE CAST(id AS CHAR(10)) = :a", "parameters": {"a": "10\\' OR 1=1 -- "}},
        {"query": "SELECT :a", "parameters": {"a": {f"k'); SELECT secret FROM {h} -- ": "v\\'"}}},
        {"query": "SELECT :a", "parameters": {"a": ["x'", {"y\\": "z"}, None, True]}},
        {"query": f"SELECT :a FROM {c}", "parameters": {"a": "ssn"}},
        {"query": f"SELECT id FROM {o} ORDER BY :a", "parameters": {"a": "total"}},
        {"query": f"SELECT '{ph}', {ph}", "parameters": [inj]},
        {"query": "SELECT :a, :b", "parameters": {"a": "%s", "b": inj}},
        {"query": f"SELECT id FROM {o} -- :a\n WHERE id = 10", "parameters": {"a": inj}},
        {"query": f"SELECT id FROM {o} WHERE id = :a /* :b */", "parameters": {"a": 10, "b": inj}},
    ]
    if backend == "mysql":
        calls += [
            {"query": "SELECT \"%s\", :a", "parameters": {"a": inj}},
            {"query": "SELECT '\\%s', :a", "parameters": {"a": inj}},
            {"query": f"SELECT :a FROM {o} WHERE id = 10 # %s\n", "parameters": {"a": inj}},
        ]
    return [("execute_query", call) for call in calls]


async def test_parameters_stay_values(backend: Backend, shop: dict[str, str]) -> None:
    """No value changes the statement: each runs as the value it is, or is refused."""
    bad = await probe(backend, shop, parameter_calls(backend.name, shop["c"], shop["o"], shop["h"]), refused=False)
    assert not bad, bad
    o = shop["o"]
    async with backend.client(**settings(shop)) as client:
        inj = f"' UNION SELECT secret FROM {shop['h']} -- "
        result = await client.call_tool("execute_query", {"query": "SELECT 'x%s' AS a, :a AS b", "parameters": {"a": inj}})
        assert not result.is_error, text_of(result)
        assert result.structured_content["rows"] == [["x%s", inj]]
        result = await client.call_tool("execute_query", {"query": f"SELECT count(*) FROM {o} WHERE ':a' = :a",
                                                          "parameters": {"a": ":a"}})
        assert result.structured_content["rows"] == [[2]]


# ------------------------------------------------------------------ 4. the other tools

def other_tools(backend: str, c: str, o: str, h: str) -> list[tuple[str, dict[str, Any]]]:
    catalog = {"postgres": "pg_catalog.pg_authid", "mysql": "mysql.user", "sqlite": "sqlite_master"}[backend]
    return [
        ("query_optimization", {"query": f"DELETE FROM {o} WHERE id = 10", "analyze": True}),
        ("query_optimization", {"query": f"WITH d AS (DELETE FROM {o} WHERE id = 10 RETURNING 1) SELECT * FROM d",
                                "analyze": True}),
        ("query_optimization", {"query": f"SELECT name FROM {c} WHERE ssn = 'x'", "analyze": True}),
        ("query_optimization", {"query": f"SELECT name FROM {c} WHERE ssn = :v", "parameters": {"v": "x"}}),
        ("query_optimization", {"query": f"SELECT * FROM {h}"}),
        ("query_optimization", {"query": f"SELECT id FROM {o} WHERE 'x' IN {h}"}),
        ("workload_optimization", {"queries": [{"query": f"SELECT name FROM {c} ORDER BY api_key"}]}),
        ("workload_optimization", {"queries": [{"query": f"DELETE FROM {o} WHERE id = 10"}]}),
        ("workload_optimization", {"queries": [{"query": f"SELECT secret FROM {h}"}]}),
        ("describe_schema", {"tables": [h]}),
        ("describe_schema", {"tables": [f"{c}; DROP TABLE {o}"]}),
        ("describe_schema", {"tables": [f'"{h}"']}),
        ("describe_schema", {"tables": [catalog]}),
    ]


async def test_other_tools_keep_the_same_walls(backend: Backend, shop: dict[str, str]) -> None:
    o = shop["o"]
    before = await backend.aexecute(f"SELECT id, customer_id, total FROM {o} ORDER BY id")
    bad = await probe(backend, shop, other_tools(backend.name, shop["c"], o, shop["h"]))
    assert not bad, bad
    async with backend.client(**settings(shop, "read_write")) as client:
        for sql in (f"DELETE FROM {o} WHERE id = 10", f"UPDATE {o} SET total = 0 WHERE id = 10",
                    f"INSERT INTO {o} VALUES (99, 1, 1)"):
            result = await client.call_tool("query_optimization", {"query": sql, "analyze": True})
            assert result.is_error, (sql, text_of(result))
            result = await client.call_tool("query_optimization", {"query": sql, "suggest_indexes": True})
            assert not any(s in text_of(result) for s in SECRETS)
    assert await backend.aexecute(f"SELECT id, customer_id, total FROM {o} ORDER BY id") == before


async def test_schema_shows_names_never_values(backend: Backend, shop: dict[str, str]) -> None:
    async with backend.client(**settings(shop)) as client:
        result = await client.call_tool("describe_schema", {})
        text = text_of(result)
        assert not result.is_error, text
        assert "ssn" in text and "DENIED" in text
        assert shop["h"] not in text and shop["h1"] not in text
        assert not any(s in text for s in SECRETS)
        listed = await client.list_resources()
        for resource in listed.resources:
            body = await client.read_resource(resource.uri)
            assert not any(s in str(body) for s in SECRETS)
