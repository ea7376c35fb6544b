"""Denied columns, exact identifiers and system schemas end to end, through a real MCP client.

A table holds a secret value in its denied column; every attack an agent might try
(other spellings of the same read) is sent through ``execute_query`` and
``transaction_manager`` on SQLite, PostgreSQL and MariaDB, and the secret must be absent
from every result and every error text. Ordinary analytics next to it stays allowed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Backend, unique

pytestmark = pytest.mark.anyio

SECRET = "SECRET-7373-4242"
OTHER_SECRET = "SECRET-9191-5656"

DDL = {
    "sqlite": ("CREATE TABLE {c} (id INTEGER PRIMARY KEY, name VARCHAR(30) NOT NULL, email VARCHAR(60), "
               "ssn VARCHAR(30), UNIQUE (name, ssn), CHECK (length(name) < 20))"),
    "postgres": ("CREATE TABLE {c} (id INTEGER PRIMARY KEY, name VARCHAR(30) NOT NULL, email VARCHAR(60), "
                 "ssn VARCHAR(30), UNIQUE (name, ssn), CHECK (length(name) < 20))"),
    "mysql": ("CREATE TABLE {c} (id INTEGER PRIMARY KEY, name VARCHAR(30) NOT NULL, email VARCHAR(60), "
              "ssn VARCHAR(30), UNIQUE KEY name_ssn (name, ssn), CHECK (length(name) < 20))"),
}


@pytest.fixture(scope="session")
def shop(backend: Backend) -> dict[str, Any]:
    """A customers-like table with a secret in its denied ``ssn`` column, and an orders table."""
    key = "columns_shop"
    if key not in backend.extra:
        c, o = unique("gcust"), unique("gord")
        backend.execute(
            DDL[backend.name].format(c=c),
            f"CREATE TABLE {o} (id INTEGER PRIMARY KEY, customer_id INTEGER, total INTEGER)",
            f"INSERT INTO {c} (id, name, email, ssn) VALUES (1, 'Alice', 'a@x', '{SECRET}'), "
            f"(2, 'Bob', 'b@x', '{SECRET}'), (3, 'Carol', 'c@x', '{OTHER_SECRET}')",
            f"INSERT INTO {o} VALUES (10, 1, 100), (11, 2, 250), (12, 2, 5)",
        )
        backend.extra[key] = {"c": c, "o": o}
    return dict(backend.extra[key])


def settings(shop: dict[str, Any]) -> dict[str, Any]:
    return {"mode": "read_write", "allowed_tables": f"{shop['c']},{shop['o']}",
            "denied_columns": f"{shop['c']}.ssn"}


def text_of(result: Any) -> str:
    parts = [getattr(item, "text", "") for item in result.content]
    parts.append(json.dumps(result.structured_content, default=str))
    return "\n".join(parts)


def attacks(backend: str, c: str, o: str) -> list[str]:
    found = [
        f"SELECT * FROM ({c})",
        f"SELECT * FROM ({c} c JOIN {o} o ON o.customer_id = c.id)",
        f"SELECT c.* FROM {c} c",
        f"SELECT * FROM {o} o JOIN {c} c ON c.id = o.customer_id",
        f"SELECT ssn FROM {c}",
        f"SELECT SSN FROM {c}",
        f"SELECT c.ssn FROM {c} AS c",
        f"SELECT id FROM {c} ORDER BY ssn",
        f"SELECT count(*) FROM {c} GROUP BY ssn",
        f"SELECT id FROM {c} WHERE ssn LIKE 'SECRET%'",
        f"SELECT max(ssn) FROM {c}",
        f"SELECT id, rank() OVER (PARTITION BY ssn ORDER BY id) FROM {c}",
        f"SELECT id FROM {c} c WHERE EXISTS (SELECT 1 FROM {o} o WHERE ssn = '{SECRET}')",
        f"SELECT (SELECT min(ssn) FROM {c}) AS x",
        f"SELECT x.s FROM (SELECT ssn AS s FROM {c}) x",
        f"WITH t AS (SELECT * FROM {c}) SELECT * FROM t",
        f"SELECT * FROM {c} NATURAL JOIN {o}",
        f"SELECT 1 FROM {c} JOIN {c} d USING (ssn)",
        f"SELECT id FROM {c} WHERE id IN (SELECT * FROM {c})",
        f"SELECT name FROM {c} UNION SELECT ssn FROM {c}",
        f"SELECT id FROM {c} UNION SELECT id FROM {o} ORDER BY ssn",
        f"UPDATE {c} SET email = ssn WHERE id = 1",
        f"UPDATE {c} SET name = 'x' WHERE ssn = '{SECRET}'",
        f"INSERT INTO {c} (id, name, ssn) VALUES (9, 'z', '{SECRET}')",
        f"INSERT INTO {c} VALUES (9, 'z', 'z@x', '{SECRET}')",
    ]
    if backend == "postgres":
        found += [
            f"SELECT t.s FROM {c} AS t(a, b, e, s)",
            f"SELECT t.e FROM {c} AS t(a, b, s, e)",
            f"SELECT c.to_jsonb FROM {c} c",
            f"SELECT c.row_to_json FROM {c} c",
            f"SELECT to_jsonb(c) FROM {c} c",
            f"SELECT row_to_json(c) FROM {c} c",
            f"SELECT c::text FROM {c} c",
            f"SELECT (c).* FROM {c} c",
            f"SELECT ROW(c.*) FROM {c} c",
            f"SELECT {c} FROM {c}",
            f"TABLE {c}",
            f"SELECT json_agg(c) FROM {c} c",
            f"SELECT array_agg(c)::text FROM {c} c",
            f"SELECT DISTINCT ON (ssn) id FROM {c}",
            f"SELECT x.* FROM {o} o, LATERAL (SELECT c.ssn FROM {c} c WHERE c.id = o.customer_id) x",
            f"UPDATE {c} SET name = name WHERE id = 1 RETURNING *",
            f"UPDATE {c} SET name = name WHERE id = 1 RETURNING {c}",
            f"INSERT INTO {c} (id, name) VALUES (1, 'Alice') ON CONFLICT (id) DO UPDATE SET email = 'p' "
            f"WHERE {c}.ssn = '{SECRET}' RETURNING id",
            f"INSERT INTO {c} AS t (id, name) VALUES (1, 'Alice') ON CONFLICT (id) DO UPDATE SET email = t.ssn "
            "RETURNING email",
        ]
    if backend == "mysql":
        found += [
            f"SELECT GROUP_CONCAT(ssn) FROM {c}",
            f"SELECT _rowid, name FROM {c}",
            f"INSERT INTO {c} SET id = 9, name = 'z', ssn = '{SECRET}'",
            f"INSERT INTO {c} (id, name) VALUES (1, 'Alice') ON DUPLICATE KEY UPDATE email = VALUES(ssn)",
        ]
    if backend == "sqlite":
        found += [
            f"SELECT group_concat(ssn) FROM {c}",
            f"SELECT rowid, oid, _rowid_ FROM {c}",
            f"UPDATE {c} SET name = name WHERE id = 1 RETURNING *",
        ]
    return found


async def test_every_spelling_of_a_denied_read_is_refused(backend: Backend, shop: dict[str, Any]) -> None:
    c, o = shop["c"], shop["o"]
    leaked, allowed = [], []
    async with backend.client(**settings(shop)) as client:
        for sql in attacks(backend.name, c, o):
            result = await client.call_tool("execute_query", {"query": sql})
            text = text_of(result)
            if SECRET in text or OTHER_SECRET in text:
                leaked.append(sql)
            if not result.is_error or result.structured_content["error"]["code"] != "COLUMN_NOT_ALLOWED":
                allowed.append((sql, text[:300]))
    assert not leaked, leaked
    assert not allowed, allowed
    rows = await backend.aexecute(f"SELECT count(*) FROM {c} WHERE ssn LIKE 'SECRET%'")
    assert rows[0][0] == 3  # nothing was written through a refused statement


def more_attacks(backend: str, c: str, o: str) -> list[str]:
    """Spellings refused by any rule (functions, tables, columns): the secret never shows."""
    found = [
        f"SELECT id FROM {c} WHERE ssn IS NOT NULL ORDER BY id",
        f"SELECT id FROM {c} c WHERE (c.id, c.ssn) = (1, '{SECRET}')",
        f"SELECT CASE WHEN ssn = '{SECRET}' THEN 1 ELSE 0 END FROM {c}",
        f"SELECT 1 / (CASE WHEN ssn LIKE 'S%' THEN 0 ELSE 1 END) FROM {c}",
        f"SELECT {c}.ssn FROM {c}",
        f'SELECT "ssn" FROM {c}' if backend != "mysql" else f"SELECT `ssn` FROM {c}",
        f"SELECT x.ssn FROM (SELECT * FROM {c}) x",
        f"SELECT c.name FROM {c} c JOIN {c} d ON d.ssn = c.ssn",
        f"SELECT (SELECT c.ssn FROM {o} C LIMIT 1) FROM {c} c",
        f"SELECT name FROM {c} WHERE id IN (SELECT id FROM {c} ORDER BY ssn LIMIT 1)",
        f"SELECT count(DISTINCT ssn) FROM {c}",
        f"SELECT length(ssn) FROM {c}",
        f"SELECT substr(ssn, 1, 3) FROM {c}",
        f"EXPLAIN SELECT id FROM {c} WHERE ssn = '{SECRET}'",
    ]
    if backend == "postgres":
        found += [
            f"SELECT jsonb_path_query(to_jsonb(c), '$.ssn') FROM {c} c",
            f"SELECT format('%s', c) FROM {c} c",
            f"SELECT c IS NOT NULL FROM {c} c",
            f"SELECT string_agg(c::text, ',') FROM {c} c",
            f"SELECT hstore(c) FROM {c} c",
            f"SELECT xmlforest(c.name, c.ssn) FROM {c} c",
            f"SELECT (SELECT c) FROM {c} c",
            f"SELECT t.* FROM {c} AS t(a, b, e)",
            f"SELECT * FROM ROWS FROM (jsonb_each(to_jsonb((SELECT c FROM {c} c LIMIT 1)))) AS kv",
        ]
    if backend == "mysql":
        found += [
            f"SELECT JSON_ARRAYAGG(ssn) FROM {c}",
            f"SELECT id FROM {c} FORCE INDEX (name_ssn) ORDER BY name",
            f"SELECT * FROM {c} PARTITION (p0)",
        ]
    return found


async def test_no_spelling_shows_the_secret(backend: Backend, shop: dict[str, Any]) -> None:
    leaked = []
    async with backend.client(**settings(shop)) as client:
        for sql in more_attacks(backend.name, shop["c"], shop["o"]):
            result = await client.call_tool("execute_query", {"query": sql})
            text = text_of(result)
            if SECRET in text or OTHER_SECRET in text or not result.is_error:
                leaked.append((sql, text[:200]))
    assert not leaked, leaked


async def test_ordinary_analytics_next_to_a_denied_column_is_allowed(backend: Backend, shop: dict[str, Any]) -> None:
    c, o = shop["c"], shop["o"]
    queries = [
        f"SELECT id, name, email FROM {c} ORDER BY id",
        f"SELECT count(*) FROM {c}",
        f"SELECT o.id FROM {o} o WHERE EXISTS (SELECT * FROM {c} c WHERE c.id = o.customer_id) ORDER BY o.id",
        f"SELECT c.name, sum(o.total) AS revenue FROM {c} c JOIN {o} o ON o.customer_id = c.id "
        "GROUP BY c.name ORDER BY revenue DESC",
        f"SELECT name AS n FROM {c} ORDER BY n",
        f"SELECT x.* FROM (SELECT id, name FROM {c}) x ORDER BY x.id",
        f"WITH big AS (SELECT customer_id, total FROM {o} WHERE total > 50) "
        f"SELECT c.name, b.total FROM big b JOIN {c} c ON c.id = b.customer_id ORDER BY b.total",
        f"SELECT name, row_number() OVER (ORDER BY id) FROM {c}",
    ]
    if backend.name == "postgres":
        queries.append(f"SELECT t.n FROM {c} AS t(i, n) ORDER BY t.i")
    async with backend.client(**settings(shop)) as client:
        for sql in queries:
            result = await client.call_tool("execute_query", {"query": sql})
            assert not result.is_error, (sql, result.structured_content)
            assert SECRET not in text_of(result)


async def test_error_texts_never_quote_a_denied_value(backend: Backend, shop: dict[str, Any]) -> None:
    c = shop["c"]
    writes = [
        f"UPDATE {c} SET name = 'Bob' WHERE id = 1",  # duplicate (name, ssn): the key quotes the ssn
        f"UPDATE {c} SET name = NULL WHERE id = 1",  # NOT NULL: PostgreSQL quotes the whole row
        f"UPDATE {c} SET name = 'a name far too long to pass' WHERE id = 1",  # CHECK: the row again
    ]
    async with backend.client(**settings(shop)) as client:
        for sql in writes:
            result = await client.call_tool("execute_query", {"query": sql})
            assert result.is_error, sql
            assert SECRET not in text_of(result), text_of(result)
            batch = await client.call_tool(
                "transaction_manager", {"operations": [{"query": sql}]}
            )
            assert batch.is_error, sql
            assert SECRET not in text_of(batch), text_of(batch)


async def test_mysql_exact_table_names(mysql_backend: Backend) -> None:
    """lower_case_table_names=0: CUSTOMERS is another table than customers."""
    (setting,) = (await mysql_backend.aexecute("SELECT @@lower_case_table_names"))[0]
    if int(setting) != 0:
        pytest.skip(f"this server has lower_case_table_names={setting}: names compare case-insensitively")
    lower = unique("lcn")
    upper = lower.upper()
    database = mysql_backend.url.rsplit("/", 1)[1].split("?")[0]
    await mysql_backend.aexecute(
        f"CREATE TABLE {lower} (id INTEGER PRIMARY KEY, v VARCHAR(20))",
        f"CREATE TABLE {upper} (id INTEGER PRIMARY KEY, v VARCHAR(20))",
        f"INSERT INTO {lower} VALUES (1, 'public')",
        f"INSERT INTO {upper} VALUES (1, '{SECRET}')",
    )
    async with mysql_backend.client(mode="read_write", allowed_tables=lower) as client:
        ok = await client.call_tool("execute_query", {"query": f"SELECT v FROM {lower}"})
        assert not ok.is_error and ok.structured_content["rows"] == [["public"]]
        for sql in (f"SELECT v FROM {upper}", f"SELECT v FROM `{upper}`", f"SELECT v FROM {database}.{upper}",
                    f"SELECT v FROM {database.upper()}.{lower}", f"UPDATE {upper} SET v = 'x' WHERE id = 1"):
            result = await client.call_tool("execute_query", {"query": sql})
            assert result.is_error and result.structured_content["error"]["code"] == "TABLE_NOT_ALLOWED", sql
            assert SECRET not in text_of(result)
        batch = await client.call_tool("transaction_manager", {"operations": [{"query": f"SELECT v FROM {upper}"}]})
        assert batch.is_error and SECRET not in text_of(batch)
        bulk = await client.call_tool("bulk_insert", {"table": upper, "records": [{"id": 2, "v": "w"}]})
        assert bulk.is_error and bulk.structured_content["error"]["code"] == "TABLE_NOT_ALLOWED"
        described = await client.call_tool("describe_schema", {"tables": [upper]})
        assert described.is_error and described.structured_content["error"]["code"] == "TABLE_NOT_ALLOWED"
    rows = await mysql_backend.aexecute(f"SELECT count(*) FROM {upper}")
    assert rows[0][0] == 1


async def test_url_naming_a_system_schema_whitelists_nothing(mysql_backend: Backend) -> None:
    url = mysql_backend.url.rsplit("/", 1)[0] + "/mysql"
    system = Backend("mysql", url, "mysql", mysql_backend.data_dir)
    async with system.client() as client:  # no allowed_tables: reflected
        result = await client.call_tool("execute_query", {"query": "SELECT User, authentication_string FROM user"})
        assert result.is_error and result.structured_content["error"]["code"] == "TABLE_NOT_ALLOWED"
        schema = await client.call_tool("describe_schema", {})
        assert "authentication_string" not in text_of(schema)
