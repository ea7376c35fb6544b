"""Red team, wave 3: new variants of the five attack families, on the real server.

Each probe goes through a real MCP client (``backend.client``) to a real server on SQLite,
PostgreSQL and MariaDB. A table holds known secrets in its denied columns and a second,
non-whitelisted table holds another; every probe must be refused (a structured tool
error) and no secret may appear anywhere in the result: structured content, text, error
message or hint. Writes smuggled into a read-only database must leave the data unchanged.

Found and fixed in this wave (regressions below):
- a WITH inside a subquery or LATERAL correlates with the outer query on PostgreSQL and
  SQLite: ``SELECT (WITH x AS (SELECT c.ssn AS v) SELECT v FROM x) FROM customers c``
  returned the denied column (the resolver gave CTE bodies no outer level);
- SQLite reads a string as a name after a dot and as a SET target: ``SELECT 'c'.ssn``,
  ``'c'.*``, ``UPDATE c SET 'ssn' = ...`` read or wrote the denied column;
- ``EXPLAIN (ANALYZE<tab>true)`` ran EXPLAIN ANALYZE (the option was split on spaces only);
  ``EXPLAIN (SETTINGS)`` printed the server settings changed from their defaults.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from sqlgate import safety
from sqlgate.safety import Policy
from tests.conftest import Backend, unique

pytestmark = pytest.mark.anyio

SECRET = "SECRET-5150-8686"
KEY = "APIKEY-3141-5926"
HIDDEN = "HIDDEN-2718-2818"
SECRETS = (SECRET, KEY, HIDDEN)


@pytest.fixture(scope="session")
def shop(backend: Backend) -> dict[str, str]:
    return make_shop(backend)


@pytest.fixture(scope="session")
def sqlite_shop(sqlite_backend: Backend) -> dict[str, str]:
    return make_shop(sqlite_backend)


@pytest.fixture(scope="session")
def postgres_shop(postgres_backend: Backend) -> dict[str, str]:
    return make_shop(postgres_backend)


def make_shop(backend: Backend) -> dict[str, str]:
    """customers-like ``c`` (denied ssn and api_key), orders-like ``o``, non-whitelisted ``h``."""
    key = "redteam3_shop"
    if key not in backend.extra:
        c, o, h = unique("rtcust"), unique("rtord"), unique("rthid")
        backend.execute(
            f"CREATE TABLE {c} (id INTEGER PRIMARY KEY, name VARCHAR(30), email VARCHAR(60), "
            "ssn VARCHAR(30), api_key VARCHAR(30))",
            f"CREATE TABLE {o} (id INTEGER PRIMARY KEY, customer_id INTEGER, total INTEGER)",
            f"CREATE TABLE {h} (id INTEGER PRIMARY KEY, secret VARCHAR(30))",
            f"INSERT INTO {c} VALUES (1, 'Alice', 'a@x', '{SECRET}', '{KEY}'), (2, 'Bob', 'b@x', '{SECRET}', '{KEY}')",
            f"INSERT INTO {o} VALUES (10, 1, 100), (11, 2, 250)",
            f"INSERT INTO {h} VALUES (1, '{HIDDEN}')",
        )
        backend.extra[key] = {"c": c, "o": o, "h": h}
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


async def probe(backend: Backend, shop: dict[str, str], queries: list[str], mode: str = "read_only",
                codes: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The probes that were not refused (or refused with another code than ``codes``) or
    that showed a secret."""
    bad: list[tuple[str, str]] = []
    async with backend.client(**settings(shop, mode)) as client:
        for sql in queries:
            result = await client.call_tool("execute_query", {"query": sql})
            text = text_of(result)
            if any(s in text for s in SECRETS):
                bad.append((sql, "LEAK " + text[:300]))
            elif not result.is_error or (codes and code_of(result) not in codes):
                bad.append((sql, text[:300]))
    return bad


# ------------------------------------------------------------------ 1. denied columns

def correlated_ctes(backend: str, c: str, o: str) -> list[str]:
    """A WITH inside a subquery sees the outer query (PostgreSQL, SQLite)."""
    found = [
        f"SELECT (WITH x AS (SELECT k.ssn AS v) SELECT v FROM x) FROM {c} k",
        f"SELECT (WITH x AS (SELECT ssn AS v) SELECT v FROM x) FROM {c}",
        f"SELECT (WITH x AS (SELECT {c}.ssn AS v) SELECT v FROM x) FROM {c}",
        f"SELECT (WITH x AS (SELECT 1 AS v), y AS (SELECT k.api_key AS w FROM x) SELECT w FROM y) FROM {c} k",
        f"SELECT name FROM {c} k WHERE EXISTS (WITH x AS (SELECT 1 AS v WHERE k.ssn LIKE 'SECRET%') SELECT * FROM x)",
        f"SELECT name FROM {c} k WHERE k.id IN (WITH x AS (SELECT k.id AS v WHERE k.ssn > 'R') SELECT v FROM x)",
        f"SELECT o.id FROM {o} o WHERE o.total > (WITH x AS (SELECT length(k.ssn) AS n FROM {c} k "
        "WHERE k.id = o.customer_id) SELECT n FROM x)",
    ]
    if backend == "postgres":
        found += [
            f"SELECT x.v FROM {c} k, LATERAL (WITH y AS (SELECT k.ssn AS v) SELECT v FROM y) x",
            f"SELECT x.v FROM {c} k CROSS JOIN LATERAL (WITH y AS (SELECT to_jsonb(k) AS v) SELECT v FROM y) x",
            f"SELECT (WITH x AS (SELECT k AS v) SELECT v::text FROM x) FROM {c} k",
            f"SELECT (WITH RECURSIVE x(n) AS (SELECT k.ssn UNION ALL SELECT n FROM x WHERE false) "
            f"SELECT n FROM x) FROM {c} k",
        ]
    return found


def sqlite_string_names(c: str) -> list[str]:
    """SQLite takes a string for a name after a dot: ``'k'.ssn`` is the column k.ssn."""
    return [
        f"SELECT 'k'.ssn FROM {c} AS k",
        f"SELECT 'k'.'ssn' FROM {c} k",
        f"SELECT k.'ssn' FROM {c} k",
        f"SELECT '{c}'.api_key FROM {c}",
        f"SELECT 'main'.'{c}'.'ssn' FROM {c}",
        f"SELECT 'main'.{c}.ssn FROM {c}",
        f"SELECT 'k'.* FROM {c} k",
        f"SELECT '{c}'.* FROM {c}",
        f"SELECT id FROM {c} k WHERE 'k'.ssn LIKE 'SECRET%'",
        f"SELECT count(*) FROM {c} k GROUP BY 'k'.ssn",
        f"SELECT name FROM {c} k ORDER BY 'k'.ssn",
        f"SELECT max('k'.ssn) FROM {c} k",
        f"SELECT (SELECT 'k'.ssn) FROM {c} k",
        f"SELECT json_group_array('k'.ssn) FROM {c} k",
        f"SELECT 1 FROM {c} k JOIN {c} d ON 'k'.ssn = 'd'.ssn",
    ]


def sqlite_string_targets(c: str) -> list[str]:
    """... and as a SET target: these write the denied column."""
    return [
        f"UPDATE {c} SET 'ssn' = 'overwritten' WHERE id = 1",
        f"UPDATE {c} SET ('name', 'ssn') = ('x', 'overwritten') WHERE id = 1",
        f"INSERT INTO {c} (id, name) VALUES (1, 'Alice') ON CONFLICT (id) DO UPDATE SET 'ssn' = 'overwritten'",
        f"INSERT INTO {c} (id, name) VALUES (1, 'Alice') ON CONFLICT (id) DO UPDATE SET ('api_key') = ('x')",
    ]


def more_column_variants(backend: str, c: str, o: str) -> list[str]:
    """Spellings found refused in this wave (kept so a change cannot reopen them)."""
    found = [
        f"SELECT id FROM {c} LIMIT (SELECT length(ssn) FROM {c} LIMIT 1)",
        f"SELECT (SELECT count(*) FROM {o} WHERE {o}.customer_id = {c}.id AND ssn LIKE 'S%') FROM {c}",
        f"SELECT name FROM {c} c1 WHERE EXISTS (SELECT * FROM {c} c2 WHERE c2.id = c1.id AND c2.ssn > 'R')",
        f"SELECT name FROM {c} c1 WHERE EXISTS (SELECT * FROM {c} c2 ORDER BY ssn)",
        f"SELECT t.ssn FROM (SELECT * FROM {o}) t, {c}",
        f"SELECT ssn FROM (SELECT id FROM {o}) t JOIN {c} ON 1 = 1",
        f"SELECT name FROM {c} INTERSECT SELECT ssn FROM {c}",
        f"SELECT name FROM {c} EXCEPT SELECT api_key FROM {c}",
        f"SELECT CAST(ssn AS INTEGER) FROM {c}",
        f"SELECT v.a FROM (VALUES (1)) AS v(a) JOIN {c} ON {c}.id = v.a WHERE ssn IS NULL",
        f"WITH x(a, b) AS (SELECT name, ssn FROM {c}) SELECT a FROM x",
        f"WITH {c} AS (SELECT * FROM {c}) SELECT name FROM {c}",
        f"SELECT name FROM {c} GROUP BY name HAVING max(api_key) > 'A'",
        f"SELECT id FROM {c} ORDER BY (SELECT ssn)",
    ]
    if backend == "postgres":
        found += [
            f"SELECT to_json({c}) FROM {c}",
            f"SELECT row_to_json(public.{c}) FROM {c}",
            f"SELECT public.{c} FROM public.{c}",
            f"SELECT (k).name FROM {c} k",
            f"SELECT ({c}.*).ssn FROM {c}",
            f"SELECT x FROM (SELECT k FROM {c} k) x",
            f"SELECT name FROM {c} * WHERE ssn IS NULL",
            f"SELECT * FROM ONLY {c}",
            f"SELECT k.name FROM {c} k ORDER BY k",
            f"SELECT count(DISTINCT k) FROM {c} k",
            f"SELECT t.d FROM {c} AS t(a, b, e, d)",
            f"SELECT j.* FROM {c} k CROSS JOIN LATERAL jsonb_each_text(to_jsonb(k)) j",
            f"SELECT l FROM {c} k, LATERAL (SELECT k.name, k.ssn) l",
            f"SELECT x.* FROM {c} k, LATERAL (SELECT k.*) x",
            f"SELECT j FROM (SELECT 1) x, ({c} JOIN {o} ON {o}.customer_id = {c}.id) AS j",
            f"SELECT to_json(j) FROM ({c} k JOIN {o} r ON r.customer_id = k.id) AS j",
            f"SELECT pg_column_size(k) FROM {c} k",
            f"SELECT num_nonnulls(k.*) FROM {c} k",
            f"SELECT x.ssn FROM {c} k, jsonb_to_record(to_jsonb(k)) AS x(ssn text)",
            f"SELECT 1 FROM {c} GROUP BY GROUPING SETS ((ssn))",
            f"SELECT mode() WITHIN GROUP (ORDER BY ssn) FROM {c}",
            f"SELECT first_value(name) OVER w FROM {c} WINDOW w AS (ORDER BY ssn)",
            f"SELECT t FROM {c} k, unnest(ARRAY[k.ssn]) t",
            f"SELECT * FROM {c} k, unnest(ARRAY[k.name]) u",
            f"SELECT name FROM {c} WHERE ssn::int > 0",
            f"SELECT x.v FROM {c} k, LATERAL (VALUES (k.api_key)) x(v)",
        ]
    if backend == "mysql":
        found += [
            f"SELECT JSON_OBJECT('a', ssn) FROM {c}",
            f"SELECT GROUP_CONCAT(name ORDER BY ssn) FROM {c}",
            f"SELECT GROUP_CONCAT(DISTINCT name SEPARATOR ',') FROM {c} GROUP BY api_key",
            f"SELECT name FROM {c} HAVING ssn > 'S'",
            f"SELECT j.v FROM {c} k, JSON_TABLE(JSON_ARRAY(k.ssn), '$[*]' COLUMNS (v VARCHAR(40) PATH '$')) j",
            f"SELECT name FROM {c} WHERE ssn REGEXP '^S'",
            f"SELECT name FROM {c} WHERE ssn SOUNDS LIKE 'x'",
            f"SELECT name FROM {c} ORDER BY FIELD(ssn, 'a')",
            f"SELECT CAST(ssn AS SIGNED) FROM {c}",
            f"SELECT EXTRACTVALUE(1, CONCAT(0x7e, (SELECT ssn FROM {c} LIMIT 1)))",
            f"SELECT JSON_OBJECTAGG(name, ssn) FROM {c}",
            f"SELECT name FROM {c} NATURAL LEFT JOIN {o}",
            f"SELECT name FROM {c} LIMIT 1 PROCEDURE ANALYSE()",
            f"SELECT api_\u212aey FROM {c}",  # KELVIN SIGN: lower-cases to k
        ]
    if backend == "sqlite":
        found += [
            f"SELECT json_object('a', ssn) FROM {c}",
            f"SELECT j.value FROM {c} k, json_each(json_array(k.ssn)) j",
            f"SELECT name FROM {c} WHERE [ssn] > ''",
            f"SELECT name FROM {c} WHERE `ssn` > ''",
            f"SELECT name FROM main.{c} WHERE {c}.ssn > ''",
            f"SELECT sqlite_offset(ssn) FROM {c}",
            f"SELECT printf('%s', ssn) FROM {c}",
            f"SELECT name FROM {c} WHERE ssn GLOB 'S*'",
            f"SELECT max(name, ssn) FROM {c}",
            f"SELECT * FROM json_tree((SELECT json_group_array(ssn) FROM {c}))",
            f"SELECT name FROM {c} JOIN {c} d USING ('ssn')",
            f"SELECT name FROM {c} AS 'k' WHERE k.ssn > ''",
            f"SELECT name FROM {c} WHERE rowid IN (SELECT rowid FROM {c} WHERE ssn LIKE 'S%')",
        ]
    return found


async def test_correlated_cte_bodies_cannot_read_a_denied_column(backend: Backend, shop: dict[str, str]) -> None:
    """Regression: a WITH in a subquery read the outer query's denied column (PostgreSQL, SQLite)."""
    bad = await probe(backend, shop, correlated_ctes(backend.name, shop["c"], shop["o"]))
    assert not bad, bad


async def test_correlated_cte_on_allowed_columns_still_works(backend: Backend, shop: dict[str, str]) -> None:
    if backend.name == "mysql":
        pytest.skip("MariaDB does not correlate a WITH with the outer query")
    c = shop["c"]
    async with backend.client(**settings(shop)) as client:
        result = await client.call_tool(
            "execute_query", {"query": f"SELECT (WITH x AS (SELECT k.name AS v) SELECT v FROM x) AS n FROM {c} k "
                                       "ORDER BY k.id"})
        assert not result.is_error, text_of(result)
        assert result.structured_content["rows"] == [["Alice"], ["Bob"]]


async def test_sqlite_strings_as_names_cannot_reach_a_denied_column(sqlite_backend: Backend, sqlite_shop: dict[str, str]) -> None:
    """Regression: ``'k'.ssn`` and ``SET 'ssn' = ...`` are the column on SQLite."""
    shop = sqlite_shop
    c = shop["c"]
    bad = await probe(sqlite_backend, shop, sqlite_string_names(c), codes=("COLUMN_NOT_ALLOWED",))
    bad += await probe(sqlite_backend, shop, sqlite_string_targets(c), mode="read_write",
                       codes=("COLUMN_NOT_ALLOWED",))
    assert not bad, bad
    rows = await sqlite_backend.aexecute(f"SELECT count(*) FROM {c} WHERE ssn = '{SECRET}' AND api_key = '{KEY}'")
    assert rows[0][0] == 2  # nothing was overwritten


async def test_sqlite_strings_as_names_of_allowed_columns_still_work(
        sqlite_backend: Backend, sqlite_shop: dict[str, str]) -> None:
    shop = sqlite_shop
    c, o = shop["c"], shop["o"]
    async with sqlite_backend.client(**settings(shop, "read_write")) as client:
        for sql in (f"SELECT 'k'.name FROM {c} k ORDER BY k.id", f"SELECT '{c}'.'name' FROM {c} ORDER BY id",
                    f"SELECT 'r'.* FROM {o} r ORDER BY r.id", f"UPDATE {c} SET 'name' = name WHERE id = 1"):
            result = await client.call_tool("execute_query", {"query": sql})
            assert not result.is_error, (sql, text_of(result))


async def test_more_denied_column_variants_are_refused(backend: Backend, shop: dict[str, str]) -> None:
    bad = await probe(backend, shop, more_column_variants(backend.name, shop["c"], shop["o"]))
    assert not bad, bad


# -------------------------------------------------------------- 2. the table whitelist

def whitelist_variants(backend: str, h: str, o: str) -> list[str]:
    found = [
        f"SELECT * FROM {h.upper()}",
        f"SELECT * FROM {o} WHERE EXISTS (SELECT 1 FROM {h} WHERE secret LIKE 'H%')",
        f"WITH {o} AS (SELECT * FROM {h}) SELECT * FROM {o}",
        f"WITH RECURSIVE {o} AS (SELECT * FROM {h}) SELECT * FROM {o}",
        f"SELECT (SELECT secret FROM {h})",
        f"SELECT * FROM {o} ORDER BY (SELECT max(secret) FROM {h})",
        f"SELECT * FROM {o} NATURAL JOIN {h}",
        f"SELECT * FROM ({o} JOIN {h} x ON true)",
        f"SELECT count(*) FROM {h}",
        f"EXPLAIN SELECT * FROM {h}",
    ]
    if backend == "postgres":
        found += [
            f"TABLE {h}", f"TABLE public.{h}", f"SELECT * FROM {o} r WHERE r.id IN (TABLE {h})",
            f'SELECT * FROM "public"."{h}"', f"SELECT * FROM {h}*", f"SELECT * FROM ONLY {h}",
            f"SELECT * FROM pg_temp.{h}", f"VALUES ((SELECT secret FROM {h}))",
            f"SELECT ARRAY(SELECT secret FROM {h})", f"SELECT 1 FROM {o} JOIN LATERAL (SELECT * FROM {h}) x ON true",
            f"SELECT * FROM {o} TABLESAMPLE BERNOULLI ((SELECT length(secret) FROM {h}))",
            f"SELECT query_to_xml('select * from {h}', true, true, '')",
            f"SELECT * FROM ts_stat('select to_tsvector(secret) from {h}')",
            f"SELECT ts_rewrite('a'::tsquery, 'select secret::tsquery, ''b''::tsquery from {h}')",
            f"SELECT '{h}'::regclass", f"SELECT to_regclass('{h}')", f"SELECT pg_relation_size('{h}')",
            "SELECT pg_read_file('/etc/passwd')", "SELECT dblink('x', 'y')",
            "SELECT * FROM xmltable('/a' PASSING '<a/>' COLUMNS x int)",
            "SELECT * FROM pg_catalog.pg_class", "SELECT * FROM information_schema.columns",
        ]
    if backend == "mysql":
        found += [
            f"SELECT * FROM `{h}`", f"DESCRIBE {h}", f"EXPLAIN {h}", f"SHOW COLUMNS FROM {h}",
            "SELECT * FROM mysql.user", "SELECT * FROM `mysql`.`user`", "SELECT * FROM MYSQL.user",
            "SELECT * FROM information_schema.columns", "SELECT * FROM seq_1_to_3",
            "SELECT LOAD_FILE('/etc/passwd')", f"SELECT 1 /*! , (SELECT secret FROM {h}) */",
        ]
    if backend == "sqlite":
        found += [
            f"SELECT * FROM '{h}'", f"SELECT * FROM [{h}]", f"SELECT * FROM main.{h}", f"SELECT * FROM 'main'.'{h}'",
            "SELECT * FROM sqlite_schema", "SELECT * FROM main.sqlite_master", 'SELECT * FROM "SQLITE_MASTER"',
            f"SELECT * FROM pragma_table_info('{h}')", f'SELECT * FROM "pragma_table_info"(\'{h}\')',
            f"SELECT * FROM main.pragma_table_info('{h}')", "SELECT * FROM dbstat", "SELECT * FROM sqlite_dbpage",
            "SELECT readfile('/etc/passwd')", "SELECT load_extension('/tmp/x.so')",
            f"SELECT * FROM json_each((SELECT secret FROM {h}))",
        ]
    return found


async def test_other_tables_stay_out_of_reach(backend: Backend, shop: dict[str, str]) -> None:
    bad = await probe(backend, shop, whitelist_variants(backend.name, shop["h"], shop["o"]))
    assert not bad, bad


# ------------------------------------------------------- 3. other sessions, server state

SERVER_STATE = {
    "postgres": [
        "SELECT * FROM pg_stat_activity", "SELECT * FROM pg_catalog.pg_stat_activity",
        'SELECT * FROM "pg_stat_activity"', "SELECT * FROM pg_stat_statements", "SELECT * FROM pg_settings",
        "SELECT current_setting('data_directory')", "SELECT pg_stat_get_backend_activity(1)",
        "SELECT * FROM pg_catalog.pg_stat_get_activity(NULL)", 'SELECT "pg_stat_get_backend_activity"(1)',
        "SELECT * FROM ROWS FROM (generate_series(1, 2), pg_stat_get_activity(NULL))",
        "SELECT pg_blocking_pids(1)", "SELECT inet_server_addr()", "SELECT current_schemas(true)",
        "SELECT pg_postmaster_start_time()", "SHOW ALL", "SHOW search_path",
        "SELECT set_config('search_path', 'pg_catalog', false)",
        "EXPLAIN (SETTINGS) SELECT 1",  # regression: the settings changed from their defaults
        "EXPLAIN (SETTINGS true, FORMAT JSON) SELECT 1",
    ],
    "mysql": [
        "SELECT * FROM information_schema.processlist", "SELECT * FROM INFORMATION_SCHEMA.PROCESSLIST",
        "SELECT * FROM Information_Schema.Processlist", "SELECT * FROM performance_schema.threads",
        "SELECT * FROM PERFORMANCE_SCHEMA.EVENTS_STATEMENTS_HISTORY", "SELECT * FROM sys.processlist",
        "SELECT @@datadir", "SELECT @@GLOBAL.datadir", "SELECT @@hostname", "SELECT @@`datadir`",
        "SELECT /*!50000 @@datadir */ 1", "SELECT /*M!100000 @@datadir */ 1", "SHOW PROCESSLIST",
        "SHOW VARIABLES", "SHOW GRANTS", "SHOW ENGINE INNODB STATUS", "EXPLAIN FOR CONNECTION 1",
        "SHOW EXPLAIN FOR 1", "SELECT CONNECTION_ID()", "SELECT USER()",
    ],
    "sqlite": [
        "SELECT * FROM sqlite_stmt", "SELECT sqlite_compileoption_get(0)", "PRAGMA database_list",
        "SELECT * FROM pragma_database_list", "SELECT * FROM pragma_compile_options",
    ],
}


async def test_server_state_and_other_sessions_stay_hidden(backend: Backend, shop: dict[str, str]) -> None:
    bad = await probe(backend, shop, SERVER_STATE[backend.name])
    assert not bad, bad


# ------------------------------------------------ 4. writes in read_only, smuggling

SMUGGLING = {
    "postgres": [
        "SELECT 1; DELETE FROM {o}", "SELECT 1 /* ; */ ; DELETE FROM {o}", "SELECT $$;$$; DELETE FROM {o}",
        "SELECT 'a\\'; DELETE FROM {o}; --'", "WITH d AS (DELETE FROM {o} WHERE id = 10 RETURNING *) SELECT * FROM d",
        "WITH d AS (UPDATE {o} SET total = 0 WHERE id = 10 RETURNING 1) SELECT 1",
        "SELECT * INTO rt_newtab FROM {o}", "SELECT * FROM {o} FOR UPDATE", "SELECT * FROM {o} FOR KEY SHARE",
        "DO $$BEGIN DELETE FROM {o}; END$$", "CALL p()", "SET LOCAL statement_timeout = 0",
        "PREPARE p AS DELETE FROM {o}", "EXECUTE p", "COPY {o} TO STDOUT", "COPY (SELECT 1) TO '/tmp/x'",
        "SELECT pg_notify('x', 'y')", "LOCK TABLE {o}", "DECLARE c CURSOR FOR SELECT 1",
        "SELECT nextval('s')", "SELECT setval('s', 1)", "SELECT pg_advisory_lock(1)",
        "SELECT pg_try_advisory_xact_lock(1)", "SELECT lo_import('/etc/passwd')", "SELECT pg_sleep(1)",
        "SELECT pg_cancel_backend(1)", "SELECT txid_current()",
        "EXPLAIN (ANALYZE\tTRUE) SELECT count(*) FROM {o}",  # regression: tab before the value
        "EXPLAIN (ANALYZE\ton, FORMAT JSON) SELECT 1", "EXPLAIN (COSTS\tFALSE, ANALYZE\t1) SELECT 1",
        "EXPLAIN (ANALYZE\nTRUE) SELECT 1", "EXPLAIN ANALYSE SELECT 1", "EXPLAIN (analyse) SELECT 1",
        "EXPLAIN WITH d AS (DELETE FROM {o} WHERE id = 10 RETURNING 1) SELECT 1",
    ],
    "mysql": [
        "SELECT 1; DELETE FROM {o}", "SELECT 1 /*! ; DELETE FROM {o} */", "SELECT 1 /*!; DELETE FROM {o} */",
        "SELECT '\\\\'; DELETE FROM {o}; -- '", "SELECT 1 # \n; DELETE FROM {o}",
        "SELECT * FROM {o} LIMIT 1 INTO @a", "SELECT * FROM {o} INTO DUMPFILE '/tmp/rt_y'",
        "SELECT 1 INTO OUTFILE '/tmp/rt_x'", "SELECT * FROM {o} FOR UPDATE", "SELECT * FROM {o} LOCK IN SHARE MODE",
        "SELECT * FROM {o} WHERE id = 10 FOR UPDATE NOWAIT", "DO SLEEP(1)", "CALL p()", "SET @a = 1",
        "SELECT @a := 1", "PREPARE s FROM 'DELETE FROM {o}'", "EXECUTE IMMEDIATE 'DELETE FROM {o}'",
        "BEGIN NOT ATOMIC DELETE FROM {o}; END", "HANDLER {o} OPEN", "XA START 'x'",
        "ANALYZE SELECT * FROM {o}", "ANALYZE FORMAT=JSON SELECT * FROM {o}",
        "SELECT GET_LOCK('x', 1)", "SELECT SLEEP(1)", "SELECT BENCHMARK(1000, md5('a'))",
        "SELECT NEXT VALUE FOR s1", "SELECT NEXTVAL(s1)", "SELECT LAST_INSERT_ID(5)", "SELECT RELEASE_ALL_LOCKS()",
        "SELECT /*+ MAX_EXECUTION_TIME(999999999) */ 1", "SELECT /*+ SET_VAR(sql_mode='') */ 1",
        "REPLACE INTO {o} VALUES (99, 1, 1)", "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE {o}",
        "WITH d AS (SELECT 1) DELETE FROM {o} WHERE id = 10",
    ],
    "sqlite": [
        "SELECT 1; DELETE FROM {o}", "SELECT ';' ; DELETE FROM {o}", "SELECT 'a'''; DELETE FROM {o}",
        "WITH d AS (DELETE FROM {o} RETURNING *) SELECT * FROM d", "INSERT OR REPLACE INTO {o} VALUES (99, 1, 1)",
        "REPLACE INTO {o} VALUES (99, 1, 1)", "DELETE FROM {o} WHERE id = 10", "PRAGMA query_only = 0",
        "ATTACH DATABASE '/tmp/rt_x.db' AS x", "VACUUM INTO '/tmp/rt_y.db'", "BEGIN IMMEDIATE", "SAVEPOINT a",
        "CREATE TEMP TRIGGER x AFTER INSERT ON {o} BEGIN SELECT 1; END", "CREATE TEMP VIEW v AS SELECT 1",
        "EXPLAIN DELETE FROM {o}", "EXPLAIN PRAGMA query_only = 0", "SELECT writefile('/tmp/rt_z', 'x')",
    ],
}


async def test_read_only_stays_read_only_whatever_the_disguise(backend: Backend, shop: dict[str, str]) -> None:
    o = shop["o"]
    before = await backend.aexecute(f"SELECT id, customer_id, total FROM {o} ORDER BY id")
    bad = await probe(backend, shop, [sql.replace("{o}", o) for sql in SMUGGLING[backend.name]])
    assert not bad, bad
    assert await backend.aexecute(f"SELECT id, customer_id, total FROM {o} ORDER BY id") == before


async def test_explain_without_analyze_still_works(postgres_backend: Backend, postgres_shop: dict[str, str]) -> None:
    shop = postgres_shop
    async with postgres_backend.client(**settings(shop)) as client:
        for sql in (f"EXPLAIN (FORMAT JSON, COSTS OFF) SELECT name FROM {shop['c']}",
                    f"EXPLAIN (ANALYZE FALSE) SELECT id FROM {shop['o']}",
                    f"EXPLAIN (VERBOSE\tTRUE, COSTS\toff) SELECT id FROM {shop['o']}"):
            result = await client.call_tool("execute_query", {"query": sql})
            assert not result.is_error, (sql, text_of(result))


# ---------------------------------------------------------------------- 5. the audit log

async def test_hostile_texts_are_recorded_visibly(
        sqlite_backend: Backend, sqlite_shop: dict[str, str], tmp_path: Any) -> None:
    """Huge, NUL, lone-surrogate and fake-log-line texts are each one audit row, stored as sent."""
    shop = sqlite_shop
    texts = [
        "SELECT 'x" + "y" * 300_000 + "'",
        "SELECT 'a\x00b'",
        "SELECT '\ud800'",
        "SELECT 1\n2026-12-01T00:00:00Z [info     ] tool call tool=execute_query outcome=ok",
        f"SELECT 'k'.ssn FROM {shop['c']} k",
    ]
    overrides = {**settings(shop), "data_dir": str(tmp_path)}
    async with sqlite_backend.client(**overrides) as client:
        for sql in texts:
            result = await client.call_tool("execute_query", {"query": sql})
            assert result.is_error
            assert not any(s in text_of(result) for s in SECRETS)
        await client.call_tool("no_such_tool", {"query": "SELECT 2"})
        await client.call_tool("execute_query", {"query": 12})
    conn = sqlite3.connect(tmp_path / "audit.sqlite3")
    try:
        rows = conn.execute("SELECT tool, sql_text, outcome FROM sqlgate_audit ORDER BY id").fetchall()
    finally:
        conn.close()
    assert [r[0] for r in rows] == ["execute_query"] * 5 + ["no_such_tool", "execute_query"]
    assert all(r[2] == "error" for r in rows)
    assert rows[0][1].startswith("SELECT 'xyyy") and len(rows[0][1]) == len(texts[0])
    assert rows[1][1] == "SELECT 'a\\u0000b'"
    assert rows[2][1] == "SELECT '\\ud800'"
    assert rows[3][1] == texts[3]  # one row whose text holds the newline: no second record


async def test_every_statement_of_a_batch_is_in_the_audit(
        sqlite_backend: Backend, sqlite_shop: dict[str, str], tmp_path: Any) -> None:
    shop = sqlite_shop
    o = shop["o"]
    overrides = {**settings(shop, "read_write"), "data_dir": str(tmp_path)}
    async with sqlite_backend.client(**overrides) as client:
        result = await client.call_tool("transaction_manager", {"operations": [
            {"query": f"UPDATE {o} SET total = total WHERE id = 10"}, {"query": "SELECT 1"}]})
        assert not result.is_error, text_of(result)
    conn = sqlite3.connect(tmp_path / "audit.sqlite3")
    try:
        recorded = " ".join(r[0] or "" for r in conn.execute("SELECT sql_text FROM sqlgate_audit"))
    finally:
        conn.close()
    assert f"UPDATE {o}" in recorded and "SELECT 1" in recorded
    conn = sqlite3.connect(tmp_path / "audit.sqlite3")
    try:
        tables = " ".join(r[0] or "" for r in conn.execute("SELECT table_names FROM sqlgate_audit"))
    finally:
        conn.close()
    assert o in tables  # the write's table, though the last statement touched none


# ------------------------------------------------------------- the validator, offline

@pytest.mark.parametrize(("dialect", "sql"), [
    ("postgres", "SELECT (WITH x AS (SELECT c.ssn AS v) SELECT v FROM x) FROM customers c"),
    ("sqlite", "SELECT (WITH x AS (SELECT ssn AS v) SELECT v FROM x) FROM customers"),
    ("sqlite", "SELECT 'c'.ssn FROM customers c"),
    ("sqlite", "SELECT 'c'.* FROM customers c"),
    ("sqlite", "UPDATE customers SET 'ssn' = 'x' WHERE id = 1"),
])
def test_offline_check_refuses_without_reflected_columns(dialect: str, sql: str) -> None:
    """``sqlgate check`` knows no columns: the name rules still refuse these."""
    policy = Policy(mode="read_write", allowed_tables=("customers",), denied_columns=("customers.ssn",))
    with pytest.raises(safety.PolicyViolation) as denied:
        safety.check(sql, dialect, policy)
    assert denied.value.code == "COLUMN_NOT_ALLOWED"


@pytest.mark.parametrize("sql", [
    "WITH CUST AS (SELECT 1 AS x) SELECT ssn FROM cust",
    "WITH Cust AS (SELECT 1 AS ssn) SELECT c.ssn FROM cust c",
    "WITH CUST AS (SELECT 1 AS x) SELECT (SELECT ssn FROM cust LIMIT 1)",
])
def test_a_cte_named_in_another_case_does_not_hide_the_table_where_names_are_exact(sql: str) -> None:
    """MySQL with lower_case_table_names=0 compares names exactly: `cust` is then the table,
    not the CTE `CUST`, and its denied column stays denied (MariaDB, which matches CTE names
    loosely, gets a refusal it did not need: the safe side)."""
    policy = Policy(allowed_tables=("cust",), denied_columns=("cust.ssn",), exact_table_names=True,
                    table_columns=("cust\x1fid\x1fssn",))
    with pytest.raises(safety.PolicyViolation) as denied:
        safety.check(sql, "mysql", policy)
    assert denied.value.code == "COLUMN_NOT_ALLOWED"
    loose = Policy(allowed_tables=("cust",), denied_columns=("cust.ssn",), table_columns=("cust\x1fid\x1fssn",))
    safety.check("WITH cust AS (SELECT 1 AS ssn) SELECT ssn FROM cust", "mysql", loose)  # the CTE itself: fine
