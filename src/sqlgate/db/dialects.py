"""What differs between PostgreSQL (asyncpg), MySQL/MariaDB (aiomysql) and SQLite (aiosqlite).

sqlgate checks connections out of SQLAlchemy's pools but runs statements on the driver
connection itself: it controls the transaction, the read-only flag and the timeout
exactly, and skips a layer of per-row work. Each ``Driver`` knows one database's way of:

* session defaults set once per new connection (read-only, statement timeout);
* starting a transaction (read-only, isolation level, a per-call timeout);
* binding parameters (the validated AST is rendered with the driver's markers);
* running a statement and fetching at most N rows;
* turning the driver's exceptions into sqlgate errors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import inspect
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlglot import exp

from sqlgate.errors import (
    DatabaseError,
    DatabaseUnavailable,
    InvalidArgument,
    PolicyViolation,
    QueryTimeout,
    SqlgateError,
)
from sqlgate.logging import mask_secrets

ISOLATION_LEVELS = ("read_committed", "repeatable_read", "serializable", "read_uncommitted")


@dataclass
class RawResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    rows_affected: int | None
    more: bool  # the database had more rows than were fetched


def bind(statement: exp.Expr, dialect: str, params: dict[str, Any], marker: Any) -> str:
    """Render ``statement`` with each named placeholder replaced by ``marker(name)``.

    The SQL text is generated once per (statement, dialect) as a template whose
    placeholders are NUL-delimited names (NUL never survives ``safety.check``), then
    filled in per call: no tree copy or SQL generation on the hot path.
    """
    parts = _template(statement, dialect)
    missing = sorted({parts[i] for i in range(1, len(parts), 2) if parts[i] not in params})
    if missing:
        raise InvalidArgument(
            f"missing parameter(s): {', '.join(missing)}",
            "pass a value for every :name placeholder in `parameters`",
        )
    if len(parts) == 1:
        return parts[0]
    out = []
    for i, part in enumerate(parts):
        out.append(marker(part) if i % 2 else part)
    return "".join(out)


def _template(statement: exp.Expr, dialect: str) -> list[str]:
    key = f"sqlgate_template_{dialect}"
    cached = statement.meta.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]

    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder):
            return exp.Var(this=f"\x00{node.name}\x00")
        return node

    rendered = statement.transform(replace, copy=True)
    parts = rendered.sql(dialect=dialect, comments=False, normalize_functions=False).split("\x00")
    statement.meta[key] = parts
    return parts


def _db_error(exc: BaseException, sqlstate: str | None = None) -> DatabaseError:
    message = mask_secrets(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    detail = f" (SQLSTATE {sqlstate})" if sqlstate else ""
    return DatabaseError(
        f"the database rejected the statement: {message}{detail}",
        "fix the SQL using the database's message; describe the tables to check names and types",
    )


def _db_write_refused(message: str) -> PolicyViolation:
    return PolicyViolation(
        f"the database refused a write in a read-only transaction: {message}",
        "this database is read-only through sqlgate; only queries are allowed",
        code="WRITE_NOT_ALLOWED",
    )


def timeout_error(timeout_ms: int) -> QueryTimeout:
    return QueryTimeout(
        f"the statement ran longer than {timeout_ms} ms and was cancelled",
        "make the query cheaper (filter earlier, add LIMIT, aggregate less) or pass a "
        "larger timeout_seconds if the policy allows it",
    )


class Driver:
    """Base: the behaviour shared by the three drivers."""

    name: ClassVar[str]
    sqlglot_dialect: ClassVar[str]
    # A lone read may run without an explicit transaction: the session defaults set
    # at connect make it read-only and time-limited. (On MySQL the statement opens an
    # implicit transaction, read-only by the session default; the pool's
    # reset-on-return rollback ends it.)
    autocommit_reads: ClassVar[bool] = True

    async def prepare_read(self, conn: Any, timeout_ms: int) -> None:
        """Before a lone read outside an explicit transaction: make the session current."""

    def engine_kwargs(self, read_only: bool, timeout_ms: int) -> dict[str, Any]:
        return {}

    def on_connect(self, dbapi_connection: Any, read_only: bool, timeout_ms: int) -> None:
        """Session defaults for a new connection (SQLAlchemy "connect" event)."""

    async def begin(
        self, conn: Any, *, read_only: bool, isolation: str | None, timeout_ms: int, default_timeout_ms: int
    ) -> Any:
        raise NotImplementedError

    async def commit(self, conn: Any, state: Any) -> None:
        raise NotImplementedError

    async def rollback(self, conn: Any, state: Any) -> None:
        raise NotImplementedError

    async def execute(
        self, conn: Any, statement: exp.Expr, params: dict[str, Any], max_fetch: int, timeout_ms: int
    ) -> RawResult:
        raise NotImplementedError

    def map_error(self, exc: BaseException, timeout_ms: int) -> SqlgateError:
        if isinstance(exc, SqlgateError):
            return exc
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            return timeout_error(timeout_ms)
        if isinstance(exc, (ConnectionError, OSError)):
            return DatabaseUnavailable(
                f"lost the connection to the database: {mask_secrets(str(exc))}",
                "retry the call; if it keeps failing, run health_check",
            )
        return _db_error(exc)


# --------------------------------------------------------------------- PostgreSQL


class PostgresDriver(Driver):
    name = "postgresql"
    sqlglot_dialect = "postgres"

    def engine_kwargs(self, read_only: bool, timeout_ms: int) -> dict[str, Any]:
        # Session defaults, set in the startup packet: no round trip per call. A
        # read-only database gets read-only transactions even for statements that
        # never reach the validator's rules (defense in depth).
        # standard_conforming_strings: backslashes in the re-rendered literals stay literal.
        settings = {"statement_timeout": str(timeout_ms), "jit": "off", "standard_conforming_strings": "on"}
        if read_only:
            settings["default_transaction_read_only"] = "on"
        return {"connect_args": {"server_settings": settings}}

    async def begin(
        self, conn: Any, *, read_only: bool, isolation: str | None, timeout_ms: int, default_timeout_ms: int
    ) -> Any:
        transaction = conn.transaction(isolation=isolation, readonly=read_only)
        await transaction.start()
        if timeout_ms != default_timeout_ms:
            await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        return transaction

    async def commit(self, conn: Any, state: Any) -> None:
        await state.commit()

    async def rollback(self, conn: Any, state: Any) -> None:
        await state.rollback()

    async def execute(
        self, conn: Any, statement: exp.Expr, params: dict[str, Any], max_fetch: int, timeout_ms: int
    ) -> RawResult:
        # Client-side backstop a little after the server's own timeout.
        backstop = timeout_ms / 1000 + 2
        prepared, args = await pg_prepare(conn, statement, params, backstop)
        columns = [attr.name for attr in prepared.get_attributes()]
        if not columns:
            await prepared.fetch(*args, timeout=backstop)
            return RawResult([], [], _pg_rowcount(prepared.get_statusmsg()), False)
        if conn.is_in_transaction() and not _is_bounded(statement, max_fetch):
            cursor = await prepared.cursor(*args, timeout=backstop)
            rows = await cursor.fetch(max_fetch + 1, timeout=backstop)
        else:
            rows = await prepared.fetch(*args, timeout=backstop)
        more = len(rows) > max_fetch
        affected = _pg_rowcount(prepared.get_statusmsg())
        return RawResult(columns, [tuple(r) for r in rows[:max_fetch]], affected, more)

    def map_error(self, exc: BaseException, timeout_ms: int) -> SqlgateError:
        import asyncpg

        if isinstance(exc, asyncpg.QueryCanceledError):
            return timeout_error(timeout_ms)
        if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
            return _db_write_refused(str(exc))
        if isinstance(exc, asyncpg.PostgresError):
            return _db_error(exc, getattr(exc, "sqlstate", None))
        if isinstance(exc, asyncpg.InterfaceError | asyncpg.exceptions.ConnectionDoesNotExistError):
            return DatabaseUnavailable(
                f"the connection failed: {mask_secrets(str(exc))}", "retry the call"
            )
        return super().map_error(exc, timeout_ms)


async def pg_prepare(
    conn: Any, statement: exp.Expr, params: dict[str, Any], timeout_s: float, prefix: str = ""
) -> tuple[Any, list[Any]]:
    """Prepare ``prefix + statement`` on asyncpg with ``$n`` markers; coerce the values."""
    order: list[str] = []

    def marker(name: str) -> str:
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    sql = bind(statement, "postgres", params, marker)
    prepared = await conn.prepare(prefix + sql, timeout=timeout_s)
    types = [t.name for t in prepared.get_parameters()]
    return prepared, [pg_param(params[name], pg_type) for name, pg_type in zip(order, types, strict=True)]


def pg_param(value: Any, pg_type: str) -> Any:
    """Coerce a JSON argument to the Python type asyncpg wants for ``pg_type``.

    asyncpg encodes parameters in binary and insists on exact types, while agents send
    JSON: ``"2024-01-31"`` for a date, ``"12.50"`` or ``12.5`` for a numeric. The
    statement's parameter types (from the prepared statement) decide the conversion;
    a value that does not convert is an INVALID_ARGUMENT naming the expected type.
    """
    if value is None:
        return None
    try:
        if pg_type in ("json", "jsonb"):
            return value if isinstance(value, str) else json.dumps(value)
        if isinstance(value, (dict, list)) and not pg_type.startswith("_"):
            return json.dumps(value)
        if isinstance(value, str):
            converter = _PG_FROM_STRING.get(pg_type)
            return converter(value) if converter else value
        if pg_type == "numeric" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return decimal.Decimal(str(value))
        if pg_type in ("int2", "int4", "int8") and isinstance(value, float) and value.is_integer():
            return int(value)
        if pg_type in ("float4", "float8") and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if pg_type in ("text", "varchar", "bpchar", "name") and not isinstance(value, str):
            return str(value)
    except (ValueError, ArithmeticError) as exc:
        raise InvalidArgument(
            f"parameter value {value!r} is not a valid {pg_type}: {exc}",
            f"pass a {pg_type} value (dates and times as ISO 8601 strings)",
        ) from None
    return value


def _pg_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "t", "yes", "y", "1", "on"):
        return True
    if lowered in ("false", "f", "no", "n", "0", "off"):
        return False
    raise ValueError("expected true or false")


def _pg_timestamptz(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


_PG_FROM_STRING: dict[str, Any] = {
    "date": dt.date.fromisoformat,
    "timestamp": dt.datetime.fromisoformat,
    "timestamptz": _pg_timestamptz,
    "time": dt.time.fromisoformat,
    "numeric": decimal.Decimal,
    "int2": int,
    "int4": int,
    "int8": int,
    "float4": float,
    "float8": float,
    "uuid": uuid.UUID,
    "bool": _pg_bool,
}


def _pg_rowcount(status: str | None) -> int | None:
    if not status:
        return None
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else None


def _is_bounded(statement: exp.Expr, max_fetch: int) -> bool:
    limit = statement.args.get("limit")
    if not isinstance(limit, exp.Limit):
        return False
    value = limit.args.get("expression")
    return isinstance(value, exp.Literal) and value.is_int and int(value.this) <= max_fetch + 1


# ----------------------------------------------------------------- MySQL / MariaDB


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


# ------------------------------------------------------------------------- SQLite


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


DRIVERS: dict[str, type[Driver]] = {
    "postgresql": PostgresDriver,
    "mysql": MySQLDriver,
    "sqlite": SQLiteDriver,
}
