"""The execution boundary: error classification per dialect, cancellation passing through
unmapped, SQLite's busy and interrupt paths (real databases; PostgreSQL/MariaDB network
faults are in test_boundary_faults.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import asyncpg
import pymysql
import pytest

from sqlgate.db import boundary, guard
from sqlgate.db.dialects.mysql import MySQLDialect
from sqlgate.db.dialects.postgres import PostgresDialect
from sqlgate.db.dialects.sqlite import SQLiteDialect
from sqlgate.db.engines import open_databases
from sqlgate.errors import SqlgateError
from sqlgate.safety import check
from tests.conftest import Backend, unique

PG, MY, LITE = PostgresDialect(), MySQLDialect(), SQLiteDialect()

CASES: list[tuple[str, Any, BaseException, str, bool]] = [
    # (id, dialect, driver exception, code, retryable)
    ("pg-terminated", PG, asyncpg.exceptions.AdminShutdownError("terminating connection"), "DB_UNAVAILABLE", True),
    ("pg-08003", PG, asyncpg.exceptions.ConnectionDoesNotExistError("connection does not exist"),
     "DB_UNAVAILABLE", True),
    ("pg-in-progress", PG, asyncpg.exceptions.InterfaceError(
        "cannot perform operation: another operation is in progress"), "DB_UNAVAILABLE", True),
    ("pg-reset", PG, ConnectionResetError("reset by peer"), "DB_UNAVAILABLE", True),
    ("pg-lock-timeout", PG, asyncpg.exceptions.LockNotAvailableError("lock timeout"), "DB_BUSY", True),
    ("pg-deadlock", PG, asyncpg.exceptions.DeadlockDetectedError("deadlock detected"), "DB_CONFLICT", True),
    ("pg-serialization", PG, asyncpg.exceptions.SerializationError("could not serialize"), "DB_CONFLICT", True),
    ("pg-unique", PG, asyncpg.exceptions.UniqueViolationError("duplicate key"), "CONSTRAINT_VIOLATION", False),
    ("pg-fk", PG, asyncpg.exceptions.ForeignKeyViolationError("violates fk"), "CONSTRAINT_VIOLATION", False),
    ("pg-timeout", PG, asyncpg.exceptions.QueryCanceledError("statement timeout"), "TIMEOUT", False),
    ("pg-syntax", PG, asyncpg.exceptions.PostgresSyntaxError("syntax error"), "DB_ERROR", False),
    ("my-lost", MY, pymysql.err.OperationalError(2013, "Lost connection to server during query"),
     "DB_UNAVAILABLE", True),
    ("my-gone", MY, pymysql.err.OperationalError(2006, "server has gone away"), "DB_UNAVAILABLE", True),
    ("my-killed", MY, pymysql.err.OperationalError(1927, "Connection was killed"), "DB_UNAVAILABLE", True),
    ("my-shutdown", MY, pymysql.err.OperationalError(1053, "Server shutdown in progress"), "DB_UNAVAILABLE", True),
    ("my-closed", MY, pymysql.err.InterfaceError(0, ""), "DB_UNAVAILABLE", True),
    ("my-lock-wait", MY, pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), "DB_BUSY", True),
    ("my-deadlock", MY, pymysql.err.OperationalError(1213, "Deadlock found"), "DB_CONFLICT", True),
    ("my-duplicate", MY, pymysql.err.IntegrityError(1062, "Duplicate entry"), "CONSTRAINT_VIOLATION", False),
    ("my-timeout", MY, pymysql.err.OperationalError(1969, "max_statement_time exceeded"), "TIMEOUT", False),
    ("my-syntax", MY, pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax"), "DB_ERROR", False),
    ("lite-locked", LITE, sqlite3.OperationalError("database is locked"), "DB_BUSY", True),
    ("lite-unique", LITE, sqlite3.IntegrityError("UNIQUE constraint failed: t.id"), "CONSTRAINT_VIOLATION", False),
    ("lite-interrupted", LITE, sqlite3.OperationalError("interrupted"), "TIMEOUT", False),
    ("lite-syntax", LITE, sqlite3.OperationalError('near "SELEC": syntax error'), "DB_ERROR", False),
]


@pytest.mark.parametrize(("dialect", "exc", "code", "retryable"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_errors_are_classified_into_codes_an_agent_can_act_on(
    dialect: Any, exc: BaseException, code: str, retryable: bool
) -> None:
    error = dialect.map_error(exc, 1000)
    assert (error.code, error.retryable, error.to_dict()["retryable"]) == (code, retryable, retryable)
    assert ("fix the SQL" in error.hint) == (code == "DB_ERROR")


def test_cancellation_is_not_an_error() -> None:
    for dialect in (PG, MY, LITE):
        assert not dialect.answered(asyncio.CancelledError())
    assert SqlgateError("x").to_dict()["retryable"] is False


async def test_cancelled_call_raises_cancelled_error_not_a_database_error(postgres_backend: Backend) -> None:
    settings = postgres_backend.settings(allowed_functions="pg_sleep", log_level="WARNING")
    databases = await open_databases(settings)
    database = databases.default
    try:
        verdict = check("SELECT pg_sleep(20)", database.dialect, database.policy)
        for run in (
            lambda: guard.execute(database, verdict, {}),  # the lone-read path
            lambda: guard.execute(database, verdict, {}, timeout_ms=25_000),  # the transaction path
        ):
            task = asyncio.create_task(run())
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        if database.cleanups:  # the clean-ups after the calls answered
            await asyncio.wait(set(database.cleanups), timeout=boundary.CLEANUP_MAX_S)
        assert database.pool_stats().checked_out == 0
        one = check("SELECT 1", database.dialect, database.policy)
        assert (await guard.execute(database, one, {})).rows == [[1]]
    finally:
        await databases.close()


# ------------------------------------------------------------------------ SQLite


async def test_sqlite_write_lock_held_elsewhere_is_busy_not_db_error(sqlite_backend: Backend) -> None:
    table = unique("busy")
    await sqlite_backend.aexecute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    path = sqlite_backend.url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another connection holds the write lock
    try:
        async with sqlite_backend.client(mode="read_write", allowed_tables=table) as client:
            started = time.monotonic()
            result = await client.call_tool(
                "execute_query", {"query": f"INSERT INTO {table} (id) VALUES (1)", "timeout_seconds": 1}
            )
            seconds = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    body = result.structured_content["error"]
    assert (body["code"], body["retryable"]) == ("DB_BUSY", True)
    assert seconds < 2.0


LONG_SQLITE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000000) "
    "SELECT count(*) FROM c"
)


async def test_sqlite_timeout_and_client_cancel_interrupt_the_statement(sqlite_backend: Backend) -> None:
    async with sqlite_backend.client(log_level="WARNING") as client:
        started = time.monotonic()
        timed_out = await client.call_tool("execute_query", {"query": LONG_SQLITE, "timeout_seconds": 1})
        assert time.monotonic() - started < 2.0
        assert timed_out.structured_content["error"]["code"] == "TIMEOUT"
        call = asyncio.create_task(client.call_tool("execute_query", {"query": LONG_SQLITE}))
        await asyncio.sleep(0.5)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # The pooled connection closes on aiosqlite's thread behind the statement: the
        # pool is whole only once the interrupted statement has stopped.
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            report = (await client.call_tool("health_check", {"include_stats": True})).structured_content
            if report["databases"][0]["pool"]["checked_out"] == 0:
                break
            await asyncio.sleep(0.1)
        assert report["databases"][0]["pool"]["checked_out"] == 0
        after = await client.call_tool("execute_query", {"query": "SELECT 1"})
        assert not after.is_error, after.content


def test_every_error_code_is_in_the_docs_table() -> None:
    import re
    from pathlib import Path

    import sqlgate

    src = Path(sqlgate.__file__).parent
    codes = set()
    for path in src.rglob("*.py"):
        codes |= set(re.findall(r'code ?= ?"([A-Z_]+)"', path.read_text()))
    table = (src.parents[1] / "docs" / "error-codes.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.M))
    assert codes - documented == set()


async def test_a_cached_postgres_statement_made_stale_by_a_schema_change_runs_again(postgres_backend: Backend) -> None:
    """Plain reads go through asyncpg's statement cache; after ALTER TABLE changes the
    result's columns the cached plan is refused by the server ("cached plan must not
    change result type"), and the read is prepared again instead of failing."""
    table = unique("stale")
    await postgres_backend.aexecute(f"CREATE TABLE {table} (a integer)", f"INSERT INTO {table} VALUES (1)")
    async with postgres_backend.client(log_level="WARNING") as client:
        sql = f"SELECT * FROM {table}"
        first = await client.call_tool("execute_query", {"query": sql})
        assert first.structured_content["rows"] == [[1]], first.content
        await postgres_backend.aexecute(f"ALTER TABLE {table} ADD COLUMN b integer DEFAULT 7")
        for _ in range(3):  # the pool may hand out the same connection or another one
            again = await client.call_tool("execute_query", {"query": sql})
            assert not again.is_error, again.content
            assert again.structured_content["columns"] == ["a", "b"]
            assert again.structured_content["rows"] == [[1, 7]]


async def test_a_read_after_a_read_sees_what_others_committed_between_them(backend: Backend) -> None:
    """A plain read goes back to the pool without a ROLLBACK (it left nothing open: MySQL
    connections autocommit); the next read on that connection must still see rows other
    sessions committed since, not an old snapshot."""
    table = unique("seen")
    await backend.aexecute(f"CREATE TABLE {table} (a integer)", f"INSERT INTO {table} VALUES (1)")
    async with backend.client(log_level="WARNING", pool_size=1, max_overflow=0) as client:
        sql = f"SELECT count(*) AS n FROM {table}"
        first = await client.call_tool("execute_query", {"query": sql})
        assert first.structured_content["rows"] == [[1]], first.content
        await backend.aexecute(f"INSERT INTO {table} VALUES (2)")
        again = await client.call_tool("execute_query", {"query": sql})
        assert again.structured_content["rows"] == [[2]], again.content


async def test_a_sqlite_read_too_long_for_the_event_loop_moves_to_the_driver_thread(
    sqlite_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short SQLite reads run on the event loop; one past INLINE_S is interrupted there and
    runs again on aiosqlite's thread, with the same answer (not a timeout, no rows twice)."""
    from sqlgate.db.dialects import sqlite as sqlite_dialect

    outcomes: list[bool] = []
    inline = sqlite_dialect._inline_read

    def observed(*args: Any) -> Any:
        result = inline(*args)
        outcomes.append(result is not None)
        return result

    monkeypatch.setattr(sqlite_dialect, "_inline_read", observed)
    heavy = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) "
             "SELECT sum(i) AS total, max(i) AS top FROM n")
    async with sqlite_backend.client(log_level="WARNING") as client:
        light = await client.call_tool("execute_query", {"query": "SELECT 40 + 2 AS answer"})
        assert light.structured_content["rows"] == [[42]], light.content
        result = await client.call_tool("execute_query", {"query": heavy})
        assert not result.is_error, result.content
        assert result.structured_content["rows"] == [[300000 * 300001 // 2, 300000]]
    assert outcomes == [True, False]  # the light read stayed, the heavy one moved
