"""SQLite through aiosqlite."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlglot import exp

from sqlgate.db.dialects.base import Driver, RawResult, _db_error, _db_write_refused, bind, timeout_error
from sqlgate.errors import SqlgateError


class SQLiteDriver(Driver):
    name = "sqlite"
    sqlglot_dialect = "sqlite"

    def on_connect(self, dbapi_connection: Any, read_only: bool, timeout_ms: int) -> None:
        raw = dbapi_connection.driver_connection._conn  # the sqlite3.Connection
        deadline = _Deadline()

        def setup() -> None:
            raw.execute("PRAGMA foreign_keys = ON")
            if read_only:
                # The second wall: SQLite itself refuses to change the database file.
                raw.execute("PRAGMA query_only = ON")
            # Checked every 1000 VM instructions: interrupts a statement past its deadline.
            raw.set_progress_handler(deadline.expired, 1000)

        dbapi_connection.run_async(lambda aio: aio._execute(setup))
        dbapi_connection.driver_connection._sqlgate_deadline = deadline

    async def begin(
        self, conn: Any, *, read_only: bool, isolation: str | None, timeout_ms: int, default_timeout_ms: int
    ) -> Any:
        sqlite_deadline(conn).arm(timeout_ms)
        if isolation in ("read_uncommitted",):
            await conn.execute("PRAGMA read_uncommitted = 1")
        # SQLite is serializable; DEFERRED takes locks on first use.
        await conn.execute("BEGIN IMMEDIATE" if (not read_only and isolation == "serializable") else "BEGIN")
        return None

    async def commit(self, conn: Any, state: Any) -> None:
        try:
            await conn.commit()
        finally:
            sqlite_deadline(conn).disarm()

    async def rollback(self, conn: Any, state: Any) -> None:
        try:
            await conn.rollback()
        finally:
            sqlite_deadline(conn).disarm()

    async def execute(
        self, conn: Any, statement: exp.Expr, params: dict[str, Any], max_fetch: int, timeout_ms: int
    ) -> RawResult:
        sql = bind(statement, "sqlite", params, lambda name: f":{name}")
        args = {name: _sqlite_param(value) for name, value in params.items()}
        deadline = sqlite_deadline(conn)
        armed_here = not deadline.armed
        if armed_here:
            deadline.arm(timeout_ms)
        raw = conn._conn  # the sqlite3.Connection, used only on aiosqlite's own thread

        def run() -> RawResult:
            # Execute, fetch and close in one hop to the driver thread (not three).
            cur = raw.execute(sql, args)
            try:
                if cur.description is None:
                    return RawResult([], [], cur.rowcount, False)
                columns = [d[0] for d in cur.description]
                rows = cur.fetchmany(max_fetch + 1)
                more = len(rows) > max_fetch
                affected = cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else None
                return RawResult(columns, [tuple(r) for r in rows[:max_fetch]], affected, more)
            finally:
                cur.close()

        try:
            return await conn._execute(run)  # type: ignore[no-any-return]
        finally:
            if armed_here:
                deadline.disarm()

    def map_error(self, exc: BaseException, timeout_ms: int) -> SqlgateError:
        import sqlite3

        if isinstance(exc, sqlite3.OperationalError):
            text = str(exc)
            if "interrupted" in text:
                return timeout_error(timeout_ms)
            if "readonly" in text or "read-only" in text or "query_only" in text:
                return _db_write_refused(text)
        if isinstance(exc, sqlite3.Error):
            return _db_error(exc, getattr(exc, "sqlite_errorname", None))
        return super().map_error(exc, timeout_ms)


class _Deadline:
    """A monotonic deadline read by SQLite's progress handler (on the driver thread)."""

    def __init__(self) -> None:
        self.at: float | None = None

    @property
    def armed(self) -> bool:
        return self.at is not None

    def arm(self, timeout_ms: int) -> None:
        self.at = time.monotonic() + timeout_ms / 1000

    def disarm(self) -> None:
        self.at = None

    def expired(self) -> int:
        return 1 if self.at is not None and time.monotonic() > self.at else 0


def sqlite_deadline(conn: Any) -> _Deadline:
    deadline = getattr(conn, "_sqlgate_deadline", None)
    if deadline is None:
        deadline = _Deadline()
        conn._sqlgate_deadline = deadline
    return deadline


def _sqlite_param(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


