"""The dialect base: what differs between PostgreSQL (asyncpg), MySQL/MariaDB (aiomysql) and SQLite (aiosqlite).

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
