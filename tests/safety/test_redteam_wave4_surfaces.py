"""Red team, wave 4: the surfaces beside execute_query, through a real MCP client on the real server.

``c`` is whitelisted with denied columns (``ssn`` with a comment on PostgreSQL/MariaDB,
``api_key`` with a default), ``o`` is whitelisted with a foreign key to ``c`` and one to
``h``, which is not whitelisted and holds ``HIDDEN``. No hidden value, no denied column's
metadata and no name of ``h`` may reach the agent.

Found and fixed in this pass (regressions below):
- describe_schema (and the ``schema://`` resources) named the table behind a foreign key
  even when it is not whitelisted (``FK hid -> h.id``), and printed a denied column's
  DEFAULT and comment (an operator's text about its values).
- query_optimization / workload_optimization explained statements on whitelisted views:
  a view's plan is the plan of the tables behind it (names, row estimates, indexes, the
  view's conditions with their constants) and on MariaDB it held values of rows read while
  planning (``attached_condition: b.secret = 'HIDDEN-…'``). ``is_view`` was never set
  (SQLAlchemy 2's has_table is true for views), so bulk_insert's view check never fired
  and describe_schema never said "(view)" either. Statements on views are now refused.
- health_check (read by the agent) named up to five tables outside the whitelist that the
  connected role can read; it now only counts them (``sqlgate health`` still names them).
- SQLite's what-if indexes were built in the database file itself (mode=rw, a rolled-back
  transaction) even on a read_only database: the write lock was taken, writers waited, and
  each query of a workload rebuilt every candidate over all rows under its own timeout
  (20 queries: 13 s at a 2 s statement timeout). They are now built in an in-memory copy of
  the schema and the planner's statistics; the file is only read.

Probed and harmless (refused, redacted or echoing the agent's own input): copies of denied
columns through UPDATE SET / INSERT … SELECT / ON CONFLICT … EXCLUDED / ON DUPLICATE KEY
UPDATE VALUES() / RETURNING in transaction_manager; bulk_insert with denied keys, conflict
or update columns; cast and constraint errors (values redacted); LIMIT (subquery) in
query_optimization; the health round trip on read_only databases (a TEMP table, rolled back).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from sqlgate.db import privileges
from sqlgate.db.engines import create_database
from tests.conftest import Backend, unique
from tests.test_grants import drop_role, role_url

pytestmark = pytest.mark.anyio

HIDDEN = "HIDDEN-7305-4412"
SECRET = "SECRET-5120-8864"
DEFAULT = "DEFVAL-2290-1175"
COMMENT = "CMTVAL-6618-0043"
LEAKS = (HIDDEN, SECRET, DEFAULT, COMMENT)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def shop(backend: Backend) -> dict[str, str]:
    return make_shop(backend)


def make_shop(backend: Backend) -> dict[str, str]:
    key = "redteam4_shop"
    if key not in backend.extra:
        c, o, h, v = unique("r4cust"), unique("r4ord"), unique("r4hid"), unique("r4view")
        comment = f" COMMENT '{COMMENT}'" if backend.name == "mysql" else ""
        ddl = [
            f"CREATE TABLE {h} (id INTEGER PRIMARY KEY, secret VARCHAR(30))",
            f"CREATE TABLE {c} (id INTEGER PRIMARY KEY, name VARCHAR(30) NOT NULL, ssn VARCHAR(30){comment}, "
            f"api_key VARCHAR(30) DEFAULT '{DEFAULT}')",
            f"CREATE TABLE {o} (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES {c}(id), "
            f"hid INTEGER REFERENCES {h}(id), total INTEGER)",
            f"CREATE VIEW {v} AS SELECT a.id FROM {h} a JOIN {h} b ON b.secret = a.secret",
            f"INSERT INTO {h} VALUES (1, '{HIDDEN}')",
            f"INSERT INTO {c} (id, name, ssn, api_key) VALUES (1, 'Alice', '{SECRET}', 'k1')",
            f"INSERT INTO {o} VALUES (10, 1, 1, 100)",
        ]
        if backend.name == "postgres":
            ddl.append(f"COMMENT ON COLUMN {c}.ssn IS '{COMMENT}'")
        backend.execute(*ddl)
        backend.extra[key] = {"c": c, "o": o, "h": h, "v": v}
    return dict(backend.extra[key])


def settings(shop: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"allowed_tables": f"{shop['c']},{shop['o']},{shop['v']}",
            "denied_columns": f"{shop['c']}.ssn,{shop['c']}.api_key", **extra}


def text_of(result: Any) -> str:
    parts = [getattr(item, "text", "") for item in getattr(result, "content", None) or getattr(result, "contents", [])]
    parts.append(json.dumps(getattr(result, "structured_content", None), default=str))
    return "\n".join(parts)


def code_of(result: Any) -> str | None:
    if not result.is_error or not result.structured_content:
        return None
    return str(result.structured_content["error"]["code"])


def assert_clean(text: str, shop: dict[str, str]) -> None:
    assert not [s for s in LEAKS if s in text], text
    assert shop["h"] not in text, text


# ------------------------------------------------------------------ describe_schema, schema://

async def test_schema_never_names_a_table_outside_the_whitelist_nor_a_denied_columns_metadata(
    backend: Backend, shop: dict[str, str],
) -> None:
    c, o = shop["c"], shop["o"]
    async with backend.client(**settings(shop)) as client:
        described = await client.call_tool("describe_schema", {})
        assert not described.is_error, text_of(described)
        texts = [text_of(described)]
        for uri in ("schema://main", f"schema://main/{o}", f"schema://main/{c}"):
            texts.append(text_of(await client.read_resource(uri)))
    for text in texts:
        assert_clean(text, shop)
    tables = {t["name"]: t for t in described.structured_content["tables"]}
    # Ordinary use stays: a key to a whitelisted table is named, the other only said to exist.
    assert sorted(tables[o]["foreign_keys"]) == [f"customer_id -> {c}.id", "hid -> (a table outside the whitelist)"]
    assert "ssn VARCHAR(30) DENIED" in tables[c]["columns"]
    assert any(line.startswith("api_key ") and line.endswith(" DENIED") for line in tables[c]["columns"])
    assert tables[shop["v"]].get("view") is True


# ------------------------------------------------------------------ query_optimization on views

async def test_query_optimization_refuses_views_whose_plan_shows_the_tables_behind_them(
    backend: Backend, shop: dict[str, str],
) -> None:
    v, c = shop["v"], shop["c"]
    async with backend.client(**settings(shop)) as client:
        for tool, arguments in (
            ("query_optimization", {"query": f"SELECT id FROM {v} WHERE id = 1"}),
            ("query_optimization", {"query": f"SELECT id FROM {v}", "analyze": True}),
            ("workload_optimization", {"queries": [{"query": f"SELECT name FROM {c} WHERE name = 'x'"},
                                                   {"query": f"SELECT id FROM {v} WHERE id = 1"}]}),
        ):
            result = await client.call_tool(tool, arguments)
            assert code_of(result) == "STATEMENT_NOT_ALLOWED", text_of(result)
            assert_clean(text_of(result), shop)
        # Ordinary use: tables are explained as before, views still read through execute_query.
        result = await client.call_tool("query_optimization", {"query": f"SELECT name FROM {c} WHERE name = 'x'"})
        assert not result.is_error, text_of(result)
        result = await client.call_tool("execute_query", {"query": f"SELECT count(*) FROM {v}"})
        assert not result.is_error and result.structured_content["rows"] == [[1]], text_of(result)


async def test_bulk_insert_refuses_a_view(backend: Backend, shop: dict[str, str]) -> None:
    async with backend.client(**settings(shop, mode="read_write")) as client:
        result = await client.call_tool("bulk_insert", {"table": shop["v"], "records": [{"id": 5}]})
        assert code_of(result) == "INVALID_ARGUMENT", text_of(result)
        assert "is a view" in text_of(result)


# ------------------------------------------------------------------ health_check

@pytest.fixture(params=["postgres", "mysql"])
def server_shop(request: pytest.FixtureRequest, postgres_backend: Backend,
           mysql_backend: Backend) -> tuple[Backend, dict[str, str]]:
    chosen = postgres_backend if request.param == "postgres" else mysql_backend
    return chosen, make_shop(chosen)


async def test_health_check_counts_tables_outside_the_whitelist_but_never_names_them(
    server_shop: tuple[Backend, dict[str, str]],
) -> None:
    server, shop_ = server_shop
    role, password = unique("sqlgate_r4"), "pw-" + unique("x")
    other_database = unique("r4otherdb")
    tables = (shop_["c"], shop_["o"], shop_["h"])
    if server.name == "postgres":
        setup = [f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'",
                 *(f'GRANT SELECT ON {t} TO "{role}"' for t in tables)]
    else:
        database = server.url.rsplit("/", 1)[1]
        setup = [f"CREATE USER '{role}'@'%' IDENTIFIED BY '{password}'",
                 *(f"GRANT SELECT ON `{database}`.`{t}` TO '{role}'@'%'" for t in tables),
                 # a whole other database the account may read: the agent is not told its name
                 f"GRANT SELECT ON `{other_database}`.* TO '{role}'@'%'"]
    try:
        await server.aexecute(*setup)
        url = role_url(server.url, role, password)
        overrides = {"database_url": url, "allowed_tables": f"{shop_['c']},{shop_['o']}", "audit_enabled": False}
        async with server.client(**overrides) as client:
            result = await client.call_tool("health_check", {"include_stats": False})
        text = text_of(result)
        assert shop_["h"] not in text and other_database not in text, text
        assert "1 table(s) outside the whitelist" in text, text
        # The operator's report (sqlgate health) still names them.
        database = create_database(server.settings(**overrides).resolved_databases()[0], server.settings(**overrides))
        try:
            found = await privileges.check(database, database.engine, name_outside=True)
        finally:
            await database.engine.dispose()
        assert any(shop_["h"] in finding for finding in found.findings), found
        if server.name == "mysql":
            assert any(other_database in finding for finding in found.findings), found
    finally:
        await drop_role(server, role)


# ------------------------------------------------------------------ SQLite what-if indexes

def sqlite_file(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / "whatif.sqlite3"
    con = sqlite3.connect(path)
    columns = [f"c{i}" for i in range(6)]
    con.execute(f"CREATE TABLE big (id INTEGER PRIMARY KEY, {', '.join(c + ' TEXT' for c in columns)})")
    con.executemany(f"INSERT INTO big VALUES (?, {', '.join('?' for _ in columns)})",
                    ((i, *[f"v{(i * (k + 7)) % 100003}-{k}" for k in range(6)]) for i in range(rows)))
    con.commit()
    con.close()
    return path


async def test_sqlite_what_if_never_writes_a_read_only_database(tmp_path: Path) -> None:
    """A writer holds the file's write lock: the proof needs none (it used to wait for it,
    then answer 'database is locked'), and the writer's transaction is untouched."""
    path = sqlite_file(tmp_path, 2000)
    backend = Backend("sqlite", f"sqlite:///{path}", "sqlite", tmp_path)
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO big (id, c0) VALUES (-1, 'pending')")
        async with backend.client(mode="read_only") as client:
            result = await client.call_tool("query_optimization", {"query": "SELECT id FROM big WHERE c0 = 'v1-0'"})
        assert not result.is_error, text_of(result)
        [suggestion] = result.structured_content["index_suggestions"]
        assert suggestion["columns"] == ["c0"] and suggestion["verified"] is True, suggestion
        writer.execute("COMMIT")
    finally:
        writer.close()
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall() == []
        assert con.execute("SELECT count(*) FROM big WHERE id = -1").fetchone() == (1,)
    finally:
        con.close()


async def test_sqlite_what_if_costs_the_same_whatever_the_size_of_the_data(tmp_path: Path) -> None:
    """20 queries over 250,000 rows at a 3 s statement timeout: every candidate used to be
    built over all rows again for each query, each under its own timeout (well over 3 s)."""
    path = sqlite_file(tmp_path, 250_000)
    con = sqlite3.connect(path)
    con.execute("ANALYZE")  # the copy plans with the file's statistics too
    con.commit()
    con.close()
    backend = Backend("sqlite", f"sqlite:///{path}", "sqlite", tmp_path)
    queries = [{"query": f"SELECT id FROM big WHERE c{i % 6} = 'v{i}-{i % 6}' AND c{(i + 2) % 6} = 'x'"}
               for i in range(20)]
    async with backend.client(mode="read_only", statement_timeout_ms=3000) as client:
        started = time.perf_counter()
        result = await client.call_tool("workload_optimization", {"queries": queries})
        took = time.perf_counter() - started
    assert not result.is_error, text_of(result)
    assert result.structured_content["index_suggestions"], text_of(result)
    assert all(s["verified"] for s in result.structured_content["index_suggestions"])
    assert took < 3.0, took


# ------------------------------------------------------------------ foreign key errors

async def test_a_foreign_key_error_never_names_the_table_outside_the_whitelist(
    backend: Backend, shop: dict[str, str],
) -> None:
    """A write that breaks a foreign key gets the database's error, but the table on the
    key's other side is named only when it is whitelisted: PostgreSQL ``is not present in
    table "h"`` / ``is still referenced from table "k"``, MySQL ``(`db`.`k`, CONSTRAINT ...
    REFERENCES `h` (`id`))`` (SQLite's messages name no table)."""
    o, c = shop["o"], shop["c"]
    parent, child = unique("r4par"), unique("r4kid")
    await backend.aexecute(
        f"CREATE TABLE {parent} (id INTEGER PRIMARY KEY)",
        f"CREATE TABLE {child} (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES {parent}(id))",
        f"INSERT INTO {parent} VALUES (1)", f"INSERT INTO {child} VALUES (1, 1)",
    )
    allowed = f"{c},{o},{parent}"
    async with backend.client(allowed_tables=allowed, mode="read_write") as client:
        orphan = await client.call_tool(
            "execute_query", {"query": f"INSERT INTO {o} (id, customer_id, hid, total) VALUES (77, 1, 424242, 1)"})
        referenced = await client.call_tool("execute_query", {"query": f"DELETE FROM {parent} WHERE id = 1"})
        wrong_customer = await client.call_tool(
            "execute_query", {"query": f"INSERT INTO {o} (id, customer_id, total) VALUES (78, 424242, 1)"})
    for result in (orphan, referenced, wrong_customer):
        assert code_of(result) == "CONSTRAINT_VIOLATION", text_of(result)
    for result, hidden in ((orphan, shop["h"]), (referenced, child)):
        assert hidden not in text_of(result), text_of(result)
        if backend.name != "sqlite":
            assert "(a table outside the whitelist)" in text_of(result), text_of(result)
    if backend.name != "sqlite":  # a whitelisted table on the key's other side is still named
        assert c in text_of(wrong_customer), text_of(wrong_customer)


# ------------------------------------------------------------------ EXPLAIN through execute_query

async def test_explain_of_a_view_and_describe_of_a_table_are_refused_in_every_tool(
    backend: Backend, shop: dict[str, str],
) -> None:
    """The plan of a statement on a view is the plan of the tables behind it: PostgreSQL
    named the hidden table, MariaDB's EXPLAIN FORMAT=JSON held a hidden value read while
    planning, SQLite's bytecode holds the view's constants. MySQL ``DESC t`` / ``EXPLAIN t``
    printed a denied column's DEFAULT. All refused; EXPLAIN of a statement on a table stays."""
    v, c = shop["v"], shop["c"]
    explains = {"postgres": [f"EXPLAIN SELECT id FROM {v} WHERE id = 1", f"EXPLAIN (FORMAT JSON) SELECT * FROM {v}"],
                "mysql": [f"EXPLAIN FORMAT=JSON SELECT id FROM {v} WHERE id = 1", f"DESCRIBE SELECT * FROM {v}"],
                "sqlite": [f"EXPLAIN SELECT id FROM {v} WHERE id = 1", f"EXPLAIN QUERY PLAN SELECT * FROM {v}"]}
    async with backend.client(**settings(shop)) as client:
        refused = [await client.call_tool("execute_query", {"query": q}) for q in explains[backend.name]]
        in_batch = await client.call_tool("transaction_manager", {"action": "run", "operations": [
            {"query": f"SELECT id FROM {c} WHERE id = 1"}, {"query": explains[backend.name][0]}]})
        described = ([await client.call_tool("execute_query", {"query": f"{word} {c}"})
                      for word in ("DESC", "DESCRIBE", "EXPLAIN")] if backend.name == "mysql" else [])
        plain = await client.call_tool("execute_query", {"query": f"EXPLAIN SELECT id FROM {c} WHERE id = 1"})
    for result in (*refused, *described):
        assert code_of(result) == "STATEMENT_NOT_ALLOWED", text_of(result)
        assert_clean(text_of(result), shop)
    assert in_batch.is_error and in_batch.structured_content["error"]["code"] == "STATEMENT_NOT_ALLOWED"
    assert in_batch.structured_content["error"].get("failed_operation") == 1, text_of(in_batch)
    assert "is a view" in text_of(refused[0]), text_of(refused[0])
    assert all("describe_schema" in text_of(result) for result in described)
    assert not plain.is_error, text_of(plain)
