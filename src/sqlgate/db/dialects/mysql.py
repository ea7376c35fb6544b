"""MySQL, MariaDB and TiDB through aiomysql."""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

from sqlglot import exp

from sqlgate.db.dialects.base import Driver, RawResult, _db_error, _db_write_refused, bind, timeout_error
from sqlgate.errors import DatabaseUnavailable, SqlgateError


class MySQLDriver(Driver):
    name = "mysql"
    sqlglot_dialect = "mysql"

    _ISOLATION = {
        "read_committed": "READ COMMITTED",
        "repeatable_read": "REPEATABLE READ",
        "serializable": "SERIALIZABLE",
        "read_uncommitted": "READ UNCOMMITTED",
    }

    def on_connect(self, dbapi_connection: Any, read_only: bool, timeout_ms: int) -> None:
        async def setup(conn: Any) -> None:
            async with conn.cursor() as cur:
                await cur.execute("SELECT VERSION()")
                (version,) = await cur.fetchone()
                conn._sqlgate_mariadb = "mariadb" in str(version).lower()
                if read_only:
                    await cur.execute("SET SESSION TRANSACTION READ ONLY")
                await cur.execute(_mysql_timeout_sql(conn._sqlgate_mariadb, timeout_ms))
                conn._sqlgate_timeout_ms = timeout_ms
            await conn.commit()

        dbapi_connection.run_async(setup)

    async def prepare_read(self, conn: Any, timeout_ms: int) -> None:
        # An earlier call may have left another session timeout on this connection.
        if getattr(conn, "_sqlgate_timeout_ms", None) != timeout_ms:
            async with conn.cursor() as cur:
                await cur.execute(_mysql_timeout_sql(getattr(conn, "_sqlgate_mariadb", True), timeout_ms))
            conn._sqlgate_timeout_ms = timeout_ms

    async def begin(
        self, conn: Any, *, read_only: bool, isolation: str | None, timeout_ms: int, default_timeout_ms: int
    ) -> Any:
        await self.prepare_read(conn, timeout_ms)
        async with conn.cursor() as cur:
            if isolation:
                await cur.execute(f"SET TRANSACTION ISOLATION LEVEL {self._ISOLATION[isolation]}")
            await cur.execute("START TRANSACTION READ ONLY" if read_only else "START TRANSACTION")
        return None

    async def commit(self, conn: Any, state: Any) -> None:
        await conn.commit()

    async def rollback(self, conn: Any, state: Any) -> None:
        await conn.rollback()

    async def execute(
        self, conn: Any, statement: exp.Expr, params: dict[str, Any], max_fetch: int, timeout_ms: int
    ) -> RawResult:
        # pymysql/aiomysql always interpolate parameters on the client; doing it here
        # with the driver's own escaping is the same thing, minus its %-formatting.
        sql = bind(statement, "mysql", params, lambda name: mysql_literal(conn, params[name]))
        cur = await conn.cursor()
        try:
            await asyncio.wait_for(cur.execute(sql), timeout=timeout_ms / 1000 + 2)
            if cur.description is None:
                return RawResult([], [], cur.rowcount, False)
            columns = [d[0] for d in cur.description]
            rows = cur.fetchmany(max_fetch + 1)
            if inspect.isawaitable(rows):  # aiomysql returns a completed future
                rows = await rows
            more = len(rows) > max_fetch
            return RawResult(columns, list(rows[:max_fetch]), cur.rowcount, more)
        finally:
            await cur.close()

    def map_error(self, exc: BaseException, timeout_ms: int) -> SqlgateError:
        import pymysql

        if isinstance(exc, pymysql.err.MySQLError) and exc.args:
            code = exc.args[0]
            text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
            if code in (1969, 3024, 1317):  # statement timeout (MariaDB, MySQL), interrupted
                return timeout_error(timeout_ms)
            if code in (1792, 1290):  # read-only transaction / --read-only server
                return _db_write_refused(text)
            if code in (2003, 2006, 2013, 2055):
                return DatabaseUnavailable(f"lost the connection to the database: {text}", "retry the call")
            return _db_error(text, str(code))
        return super().map_error(exc, timeout_ms)


def _mysql_timeout_sql(mariadb: bool, timeout_ms: int) -> str:
    if mariadb:
        # MariaDB: applies to every statement, in seconds.
        return f"SET SESSION max_statement_time = {timeout_ms / 1000:.3f}"
    # MySQL: applies to SELECT only; the client-side backstop covers the rest.
    return f"SET SESSION max_execution_time = {int(timeout_ms)}"


def mysql_literal(conn: Any, value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(conn.escape(value))


