"""PostgreSQL through asyncpg."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from typing import Any

from sqlglot import exp

from sqlgate.db.dialects.base import Driver, RawResult, _db_error, _db_write_refused, bind, timeout_error
from sqlgate.errors import DatabaseUnavailable, InvalidArgument, SqlgateError
from sqlgate.logging import mask_secrets


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


