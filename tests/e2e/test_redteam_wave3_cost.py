"""Red team, wave 3: bounded cost, time and the event loop, through a real MCP client.

Each probe asserts the SAFE outcome of an attack that escaped before:

* SQLite ran a read outside a transaction on the event loop first (``_inline_read``) with
  only the progress handler to stop it, and that handler never runs inside one function
  call: ``instr`` over a value built by nested ``replace`` held the loop (every session)
  10 s and answered a 1 s timeout after 10 s; a ``LIKE`` with a long pattern over a value
  doubled in a recursive CTE did the same. Such reads now run on the driver's thread.
* Nested ``replace`` (x10 per level) and ``hex`` built values past the 100,000-byte cap
  with no builder in sight, and ``instr``/``LOCATE``/``POSITION`` searched for such a
  value (haystack x needle of naive comparison that neither SQLite's progress handler nor
  MariaDB's ``KILL QUERY`` interrupts). They are ``QUERY_TOO_EXPENSIVE`` now; ordinary
  searches for a literal keep working.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.conftest import Backend, unique

WALL_S = 30.0


def nested_replace(levels: int) -> str:
    sql = "'x'"
    for _ in range(levels):
        sql = f"replace({sql}, 'x', 'xxxxxxxxxx')"
    return sql


async def call(client: Any, sql: str, **arguments: Any) -> tuple[dict[str, Any], bool, float]:
    started = time.monotonic()
    result = await asyncio.wait_for(client.call_tool("execute_query", {"query": sql, **arguments}), WALL_S)
    return dict(result.structured_content or {}), bool(result.is_error), time.monotonic() - started


# A read with no count(), outside a transaction (no timeout_seconds): it took the inline
# path. The LIKE is one VM instruction per row over values of up to 8 MiB (~3 s in all
# with a pattern at SQLite's 100-byte cap, db/dialects/sqlite.py SQLITE_LIMITS).
DOUBLING = "WITH RECURSIVE r(s, n) AS (SELECT 'x', 0 UNION ALL SELECT s || s, n + 1 FROM r WHERE n < 23) "
LONG_LIKE = DOUBLING + "SELECT max(s LIKE '%" + "x" * 97 + "y%') FROM r"


async def test_sqlite_one_long_instruction_never_holds_the_loop(sqlite_backend: Backend) -> None:
    table = unique("rt3_loop")
    await sqlite_backend.aexecute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    async with sqlite_backend.client(allowed_tables=table, statement_timeout_ms=1000) as client:
        await call(client, "SELECT 1")

        async def heartbeat() -> float:
            await asyncio.sleep(0.3)  # the attack is running by now
            _, error, took = await call(client, "SELECT 1")
            assert not error
            return took

        (body, error, took), beat = await asyncio.gather(call(client, LONG_LIKE), heartbeat())
        # The other call answered while the attack ran (it waited 3 s behind it before).
        assert beat < 1.0, f"SELECT 1 took {beat:.2f} s while one LIKE ran"
        # The attack answers TIMEOUT within its timeout (before: ok, after ~3 s).
        assert error and body["error"]["code"] == "TIMEOUT", body
        assert took < 1.0 + 2.0
        # The server is usable afterwards.
        body, error, _ = await call(client, f"SELECT count(*) FROM {table}")
        assert not error and body["rows"] == [[0]], body


async def test_sqlite_long_values_still_read_and_point_reads_still_answer(sqlite_backend: Backend) -> None:
    """The inline path's tighter value cap moves a long read to the thread, never refuses it."""
    table = unique("rt3_wide")
    await sqlite_backend.aexecute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, body TEXT)",
        f"INSERT INTO {table} VALUES (1, printf('%.*c', 3000000, 'x')), (2, 'small')",
    )
    async with sqlite_backend.client(allowed_tables=table) as client:
        body, error, _ = await call(client, f"SELECT body FROM {table} WHERE id = 1")
        assert not error, body
        assert "[sqlgate: cut at 65536 bytes; " in body["rows"][0][0] and body["truncated_values"] == 1
        body, error, _ = await call(client, f"SELECT id, body, upper(body) AS loud FROM {table} WHERE id = 2")
        assert not error and body["rows"] == [[2, "small", "SMALL"]], body
        body, error, _ = await call(client, DOUBLING + "SELECT length(s) FROM r ORDER BY n DESC LIMIT 1")
        assert not error and body["rows"] == [[1 << 23]], body


SEARCH = {  # the searched-for text is the second piece
    "sqlite": "instr({hay}, {needle})",
    "postgres": "strpos({hay}, {needle})",
    "mysql": "LOCATE({needle}, {hay})",
}


async def test_built_values_and_unbounded_searches_are_refused(backend: Backend) -> None:
    table = unique("rt3_search")
    await backend.aexecute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, email VARCHAR(200), domain VARCHAR(200))",
        f"INSERT INTO {table} VALUES (1, 'ann@example.com', 'example.com')",
    )
    search = SEARCH[backend.name]
    async with backend.client(allowed_tables=table) as client:
        # Nested replace: 10 x per level, 1 MB here; no repeat/lpad in sight.
        body, error, _ = await call(client, f"SELECT length({nested_replace(6)})")
        assert error and body["error"]["code"] == "QUERY_TOO_EXPENSIVE", body
        # Nested hex doubles per level (PostgreSQL has no hex()).
        if backend.name != "postgres":
            body, error, _ = await call(client, "SELECT " + "hex(" * 7 + "email" + ")" * 7 + f" FROM {table}")
            assert error and body["error"]["code"] == "QUERY_TOO_EXPENSIVE", body
        # A search whose needle is built, a column or a parameter: its cost is unknown.
        for needle in (nested_replace(4), "domain", ":needle"):
            sql = f"SELECT {search.format(hay='email', needle=needle)} FROM {table}"
            body, error, _ = await call(client, sql, parameters={"needle": "x"} if needle == ":needle" else {})
            assert error and body["error"]["code"] == "QUERY_TOO_EXPENSIVE", (needle, body)
        body, error, _ = await call(client, f"SELECT {search.format(hay='email', needle=repr('x' * 300))} FROM {table}")
        assert error and body["error"]["code"] == "QUERY_TOO_EXPENSIVE", body
        # Ordinary analytics keeps working: a literal needle, a small replace.
        sql = (f"SELECT {search.format(hay='email', needle=repr('@'))}, replace(email, '@', ' at ') "
               f"FROM {table} ORDER BY id")
        body, error, _ = await call(client, sql)
        assert not error and body["rows"] == [[4, "ann at example.com"]], body


@pytest.mark.parametrize("levels", [5])
async def test_a_small_nested_replace_is_still_allowed(sqlite_backend: Backend, levels: int) -> None:
    async with sqlite_backend.client() as client:
        body, error, _ = await call(client, f"SELECT length({nested_replace(levels)})")
        assert not error and body["rows"] == [[10**levels]], body
