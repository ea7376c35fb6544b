"""PostgreSQL through asyncpg."""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import datetime as dt
import decimal
import functools
import io
import itertools
import json
import operator
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from sqlgate.db.dialects import (
    postgres_privileges,  # least privilege
    tls,  # connecting: TLS
)
from sqlgate.db.dialects.base import (
    BulkPlan,
    Counts,
    Dialect,
    RawResult,
    bind,
    busy,
    conflict,
    constraint_violation,
    db_error,
    db_write_refused,
    timeout_error,
    unavailable,
    unreadable_value,
)
from sqlgate.db.dialects.plans import IndexSyntax, RawPlan, WhatIfPlan  # query_optimization hooks
from sqlgate.db.dialects.tls import TlsStatus
from sqlgate.db.parameters import describe
from sqlgate.db.results import LongBytes, LongText, register_infinite
from sqlgate.errors import ConfigError, InvalidArgument, SqlgateError
from sqlgate.logging import mask_secrets

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from sqlgate.db.dialects.grants import GrantPlan
    from sqlgate.db.results import RowBudget


class PostgresDialect(Dialect):
    name = "postgresql"
    sqlglot_dialect = "postgres"
    async_driver = "postgresql+asyncpg"
    connect_timeout_arg = "timeout"
    prepared_statements_option = True
    facts_sql = "SELECT version(), current_schema()"
    # sqlgate's own fixed catalog statement, with bound values: it bypasses safety.check.
    row_estimate_sql = (
        "SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = :name AND n.nspname = COALESCE(CAST(:schema AS text), current_schema())"
    )
    row_count_source = "pg_class.reltuples estimate"

    def __init__(self) -> None:
        # Parameter types of bulk_insert's statements, by (schema, table, columns).
        self._bulk_types: dict[tuple[Any, ...], list[str]] = {}
        _register_infinities()

    # --- connecting: TLS and transaction poolers (the URL's options; end of this module)

    def configured(self, url: URL) -> Dialect:
        return PostgresPoolerDialect() if pg_behind_pooler(url) else self

    def tls_status(self, conn: Any) -> TlsStatus | None:
        return tls.status_of(getattr(conn, "_transport", None))

    def validate_url(self, url: URL) -> None:
        pg_connect_options(url)

    def engine_kwargs(self, read_only: bool, timeout_ms: int) -> dict[str, Any]:
        # Session defaults, set in the startup packet: no round trip per call. A
        # read-only database gets read-only transactions even for statements that
        # never reach the validator's rules (defense in depth).
        # standard_conforming_strings: backslashes in the re-rendered literals stay literal.
        settings = {"statement_timeout": str(timeout_ms), "jit": "off", "standard_conforming_strings": "on"}
        if read_only:
            settings["default_transaction_read_only"] = "on"
        if self.idle_in_transaction_s:  # (a pooler gets none: it is a session setting)
            settings["idle_in_transaction_session_timeout"] = str(self.idle_in_transaction_s * 1000)
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
        self, conn: Any, statement: exp.Expr, params: dict[str, Any], budget: RowBudget, timeout_ms: int
    ) -> RawResult:
        # Client-side backstop a little after the server's own timeout.
        backstop = timeout_ms / 1000 + 2
        if conn.is_in_transaction():
            prepared, args = await pg_prepare(conn, statement, params, backstop)
            return await self._run_prepared(conn, statement, prepared, args, budget, backstop, cached=False)
        # Outside a transaction (a plain read), through asyncpg's statement cache: a
        # repeated statement is not parsed again (none behind a transaction pooler, where
        # the cache is off). A cached plan a schema change made stale is dropped and the
        # statement runs once more, as asyncpg does for its own queries.
        import asyncpg

        prepared, args = await pg_prepare(conn, statement, params, backstop, cached=True)
        try:
            return await self._run_prepared(conn, statement, prepared, args, budget, backstop)
        except asyncpg.exceptions.InvalidCachedStatementError:
            conn._drop_local_statement_cache()
            if conn.is_in_transaction():
                raise
            budget.reset()
            prepared, args = await pg_prepare(conn, statement, params, backstop)
            return await self._run_prepared(conn, statement, prepared, args, budget, backstop, cached=False)

    async def _run_prepared(
        self, conn: Any, statement: exp.Expr, prepared: Any, args: list[Any], budget: RowBudget, backstop: float,
        *, cached: bool = True,
    ) -> RawResult:
        attributes = prepared.get_attributes()
        columns = [attr.name for attr in attributes]
        if not columns:
            await prepared.fetch(*args, timeout=backstop)
            return RawResult([], [], _pg_rowcount(prepared.get_statusmsg()), False)
        width = _pg_row_width(attributes)
        fetching: Any = budget
        if width is None and isinstance(statement, exp.Query):
            # Some column has no bounded width: its values are cut in the database
            # (pg_bounded), so a value the query builds (string_agg over millions of
            # rows) never arrives whole.
            bounded = pg_bounded(prepared.get_query(), attributes, budget.max_value_bytes)
            if cached:
                prepared = await conn._prepare(bounded.sql, timeout=backstop, use_cache=True)
            else:
                prepared = await conn.prepare(bounded.sql, timeout=backstop)
            fetching = _Unfolding(budget, bounded.unfold)
        limit = _pg_limit(statement)
        if width is not None and limit is not None and width * limit <= _PG_ONE_FETCH_BYTES:
            # The column types and the LIMIT bound the whole result: one round trip.
            budget.take(await prepared.fetch(*args, timeout=backstop))
        elif conn.is_in_transaction():
            await _pg_stream(prepared, args, fetching, backstop, close=True)
        elif not await _pg_first_rows(prepared, args, fetching, backstop):
            # More rows than the first fetch held: run it again through a cursor, which
            # lives in a transaction (its end closes the portal), chunk by chunk.
            budget.reset()
            await self._stream_in_transaction(conn, prepared, args, fetching, backstop)
        return RawResult(columns, budget.rows, _pg_rowcount(prepared.get_statusmsg()), budget.more)

    async def _stream_in_transaction(
        self, conn: Any, prepared: Any, args: list[Any], budget: Any, backstop: float
    ) -> None:
        """``_pg_stream`` in a transaction of its own (its end closes the portal).

        Rolled back only after an error the server answered (the connection goes on). After
        anything else (the call's deadline, a cancel, a lost link) no ROLLBACK is sent: the
        boundary drops the connection and the server ends the transaction with it. asyncpg's
        ``async with conn.transaction()`` sent one without a time limit, so a link that went
        silent mid-fetch held the call past its deadline, for ever.
        """
        transaction = conn.transaction()
        await transaction.start()
        try:
            await _pg_stream(prepared, args, budget, backstop, close=False)
        except BaseException as exc:
            if self.answered(exc):
                await asyncio.wait_for(transaction.rollback(), backstop)
            raise
        await transaction.commit()

    # --- errors and cancellation (the execution boundary, db/boundary.py)

    def map_error(self, exc: BaseException, timeout_ms: int) -> SqlgateError:
        import asyncpg

        if isinstance(exc, asyncpg.exceptions.DataError) and str(exc).startswith("invalid input for query argument"):
            # asyncpg's own encoder refused a parameter before anything was sent (it is a
            # PostgresError with SQLSTATE 22000, but the statement is not at fault)
            return InvalidArgument(
                f"a parameter value does not fit its column: {mask_secrets(str(exc))}",
                "pass values of the column's type (dates and times as ISO 8601 strings, binary as \"base64:...\")",
            )
        if isinstance(exc, asyncpg.PostgresError):
            state = str(getattr(exc, "sqlstate", "") or "")
            text = str(exc)
            if state == "57014":  # query_canceled: the statement timeout (or our cancel)
                return timeout_error(timeout_ms)
            if state == "25006":  # read_only_sql_transaction
                return db_write_refused(text)
            if state.startswith("08") or state in _PG_UNAVAILABLE:
                return unavailable(f"the database connection ended: {text} (SQLSTATE {state})")
            if state in ("55P03",):  # lock_not_available (lock_timeout, NOWAIT)
                return busy(f"{text} (SQLSTATE {state})")
            if state in ("40001", "40P01"):  # serialization_failure, deadlock_detected
                return conflict(f"{text} (SQLSTATE {state})")
            if state.startswith("23"):  # integrity_constraint_violation
                return constraint_violation(text, f"SQLSTATE {state}")
            return db_error(exc, state or None)
        if isinstance(exc, asyncpg.InterfaceError | asyncpg.exceptions.ConnectionDoesNotExistError):
            # "connection is closed", "another operation is in progress" after a
            # terminated backend or a cancelled call: the connection, not the SQL.
            return unavailable(f"the database connection failed: {exc}")
        if isinstance(exc, ValueError | OverflowError) and _raised_by_a_decoder(exc):
            # asyncpg's result decoders: "ordinal must be >= 1", "hour must be in 0..23"
            return unreadable_value(exc, "cast the column to text in the query (col::text): the value has no "
                                         "Python equivalent (a date before year 1 or after 9999, the time 24:00:00)")
        return super().map_error(exc, timeout_ms)

    def answered(self, exc: BaseException | None) -> bool:
        import asyncpg

        if not isinstance(exc, asyncpg.PostgresError):
            return False
        state = str(getattr(exc, "sqlstate", "") or "")
        return not (state.startswith("08") or state in _PG_UNAVAILABLE)

    async def cancel(self, conn: Any, engine: Any) -> None:
        # The protocol's CancelRequest on a new socket, like asyncpg's own on a cancelled
        # await; asyncpg's is a background task that dies when the connection is
        # terminated, so the boundary sends its own and waits for it.
        from asyncpg import connect_utils

        protocol = conn._protocol
        if protocol is None or not protocol.backend_pid:
            return
        pid = protocol.backend_pid
        await connect_utils._cancel(
            loop=asyncio.get_running_loop(), addr=conn._addr, params=conn._params,
            backend_pid=pid, backend_secret=protocol.backend_secret,
        )
        # A timeout is a stop: the socket closes now, and a backend still active after
        # STOP_GRACE_S (a function that does not check for interrupts) is terminated.
        self.abort(conn)
        await _pg_ensure_ended(engine, pid)

    async def ping(self, conn: Any) -> None:
        await conn.execute("SELECT 1")  # simple query protocol: one round trip

    def socket_open(self, conn: Any) -> bool:
        return not conn.is_closed()  # asyncpg saw the server's FATAL / end of stream

    def abort(self, conn: Any) -> None:
        conn.terminate()

    def server_version(self, reported: str) -> str:
        # "PostgreSQL 15.4 (Debian 15.4-1) on x86_64-pc-linux-gnu, compiled by ..." -> before " on "
        return reported.split(" on ")[0].split(",")[0]

    async def round_trip(self, conn: Any, name: str, steps: list[str], read_only: bool) -> bool:
        transaction = conn.transaction()
        await transaction.start()
        # Sessions of a read_only database default to read-only transactions.
        await conn.execute("SET TRANSACTION READ WRITE")
        await conn.execute(f"CREATE TEMP TABLE {name} (id integer PRIMARY KEY, note varchar(20))")
        steps.append("create")
        await conn.execute(f"INSERT INTO {name} (id, note) VALUES (1, 'a'), (2, 'b')")
        steps.append("insert")
        if await conn.fetchval(f"SELECT count(*) FROM {name}") != 2:
            raise RuntimeError("select did not see the inserted rows")
        steps.append("select")
        if await conn.execute(f"UPDATE {name} SET note = 'c' WHERE id = 1") != "UPDATE 1":
            raise RuntimeError("update did not change one row")
        steps.append("update")
        if await conn.execute(f"DELETE FROM {name} WHERE id = 2") != "DELETE 1":
            raise RuntimeError("delete did not remove one row")
        steps.append("delete")
        await transaction.rollback()
        steps.append("rollback")
        return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"pg_temp.{name}"))

    # --- least privilege (db/privileges.py; the SQL lives in postgres_privileges.py)

    def grant_statements(self, plan: GrantPlan) -> list[str] | None:
        return postgres_privileges.grant_statements(plan)

    async def privilege_findings(self, conn: Any, plan: GrantPlan) -> list[str] | None:
        return await postgres_privileges.privilege_findings(conn, plan)

    # ------------------------------------------------------------- bulk insert
    # COPY (asyncpg ``copy_to_table`` / ``copy_records_to_table``) for on_conflict=error, in
    # the surrounding transaction, so still all-or-nothing; multi-row ``VALUES ... ON CONFLICT
    # ... RETURNING (xmax = 0)`` otherwise, which also tells inserted from updated rows.

    def add_conflict_clause(
        self, statement: exp.Insert, on_conflict: str, conflict_columns: Sequence[str], update_columns: Sequence[str]
    ) -> None:
        super().add_conflict_clause(statement, on_conflict, conflict_columns, update_columns)
        if on_conflict != "error":
            # xmax is 0 for a row this statement inserted, the updater's id for one it updated.
            flag = exp.alias_(exp.EQ(this=exp.column("xmax"), expression=exp.Literal.number(0)), "inserted")
            statement.set("returning", exp.Returning(expressions=[flag]))

    async def _types(self, plan: BulkPlan, conn: Any) -> list[str]:
        key = (plan.table.schema, plan.table.name, plan.columns)
        types = self._bulk_types.get(key)
        if types is None:
            prefix, suffix = plan.row_template(lambda i: f"${i + 1}")
            row = "(" + ", ".join(f"${i + 1}" for i in range(len(plan.columns))) + ")"
            prepared = await conn.prepare(prefix + row + suffix)
            types = self._bulk_types[key] = [t.name for t in prepared.get_parameters()]
        return list(types)

    async def insert_rows(self, plan: BulkPlan, conn: Any, rows: list[tuple[Any, ...]], timeout_s: float) -> Counts:
        types = await self._types(plan, conn)
        if plan.on_conflict == "error":
            csv_data = _pg_csv(rows, types)
            if csv_data is not None:
                # Text COPY: PostgreSQL parses the JSON scalars itself, no per-value Python work.
                status = await conn.copy_to_table(
                    plan.table.name, source=_chunks(csv_data), columns=list(plan.columns),
                    schema_name=plan.table.schema, format="csv", timeout=timeout_s,
                )
            else:
                status = await conn.copy_records_to_table(
                    plan.table.name, records=_pg_records(rows, types), columns=list(plan.columns),
                    schema_name=plan.table.schema, timeout=timeout_s,
                )
            copied = status.rsplit(" ", 1)[-1]
            return Counts(inserted=int(copied) if copied.isdigit() else len(rows))
        records = _pg_records(rows, types)
        prefix, suffix = plan.row_template(lambda i: f"${i + 1}")
        n = len(plan.columns)
        per_statement = max(1, _PG_MAX_PARAMS // n)
        key_at = [plan.columns.index(c) for c in plan.conflict_columns]
        counts = Counts()
        for chunk in _pg_chunks(records, per_statement, key_at if plan.upsert else None):
            marks = ", ".join(
                "(" + ", ".join(f"${r * n + c + 1}" for c in range(n)) + ")" for r in range(len(chunk))
            )
            args = [value for record in chunk for value in record]
            returned = await conn.fetch(prefix + marks + suffix, *args, timeout=timeout_s)
            inserted = sum(1 for r in returned if r[0])
            counts.add(Counts(inserted, len(returned) - inserted, len(chunk) - len(returned)))
        return counts

    async def stream_insert(
        self,
        plan: BulkPlan,
        conn: Any,
        batches: list[list[tuple[Any, ...]]],
        on_batch: Callable[[int, int], Awaitable[None]],
        timeout_ms: int,
    ) -> Counts | None:
        """on_conflict=error, one transaction: every batch in ONE text COPY.

        The server parses batch k while sqlgate encodes batch k+1 (one statement instead of
        a round trip per batch). None when some value needs converting in Python first.
        """
        if plan.on_conflict != "error":
            return None
        types = await self._types(plan, conn)
        kinds = _csv_ok(itertools.chain.from_iterable(batches), types)
        if kinds is None:
            return None

        async def source() -> AsyncIterator[bytes]:
            for number, rows in enumerate(batches, start=1):
                data = _pg_csv(rows, types, kinds)  # may hold NULLs the batch does not: harmless
                if data is None:  # checked above; cannot happen
                    raise SqlgateError("sqlgate could not encode a batch", "retry with atomic=false")
                yield data
                await on_batch(number, len(rows))

        status = await conn.copy_to_table(
            plan.table.name, source=source(), columns=list(plan.columns),
            schema_name=plan.table.schema, format="csv", timeout=timeout_ms / 1000 + 2,
        )
        copied = status.rsplit(" ", 1)[-1]
        return Counts(inserted=int(copied) if copied.isdigit() else sum(len(b) for b in batches))

    def failed_record(self, exc: BaseException) -> int | None:
        # PostgreSQL names the COPY input line (1-based) in the error's context.
        found = _COPY_LINE.search(str(getattr(exc, "context", "") or ""))
        return int(found.group(1)) - 1 if found else None

    # --- plans and index advice (query_optimization) -------------------------------
    # EXPLAIN (FORMAT JSON) on the advisor's (read-only, rolled back) transaction, and
    # hypothetical indexes with the hypopg extension (planner memory of this connection
    # only; sqlgate never runs CREATE EXTENSION, it uses hypopg where an administrator did).

    async def explain(
        self, conn: Any, statement: exp.Expr, params: dict[str, Any], *, analyze: bool, timeout_ms: int,
        server_version: str, generic: bool = False,
    ) -> RawPlan:
        options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze and not generic else "FORMAT JSON"
        raw = await _pg_explain(conn, statement, params, options, timeout_ms, generic)
        return RawPlan("postgres-json", raw, analyze and not generic)

    async def table_rows(self, conn: Any, schema: str | None, name: str) -> float | None:
        try:
            async with conn.transaction():  # a savepoint: a failure leaves the caller's transaction usable
                value = await conn.fetchval(
                    "SELECT c.reltuples::float8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relname = $2 AND n.nspname = COALESCE($1::text, current_schema())", schema, name,
                )
                if value is not None and value < 0:  # never analysed: count (up to a bound) instead
                    table = exp.table_(name, db=schema, quoted=True).sql("postgres")
                    value = await conn.fetchval(
                        f"SELECT count(*)::float8 FROM (SELECT 1 FROM {table} LIMIT 1000000) AS sample"  # noqa: S608
                    )
        except Exception:  # noqa: BLE001 - no estimate for this table
            return None
        return None if value is None else float(value)

    def index_syntax(self, server_version: str) -> IndexSyntax:
        # LIKE 'abc%' uses a plain B-tree only under the C collation; text_pattern_ops works under any.
        return IndexSyntax(include=True, expressions=True, expression_parens=True, prefix_like="pattern_ops",
                           costs=True)

    async def what_if_unavailable(self, conn: Any, location: str | None) -> str | None:
        if await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'"):
            return None
        return ("unverified: the hypopg extension is not installed in this database (an administrator can "
                "run CREATE EXTENSION hypopg; sqlgate never installs extensions)")

    async def plan_with_indexes(
        self, conn: Any, location: str | None, statement: exp.Expr, params: dict[str, Any],
        indexes: list[tuple[str, str]], timeout_ms: int, *, sizes: bool = False, generic: bool = False,
    ) -> WhatIfPlan:
        backstop = timeout_ms / 1000 + 2
        # Hypothetical indexes live in the connection's memory, not in the transaction:
        # clear any an earlier, cancelled call left, and always clear ours.
        await conn.execute("SELECT hypopg_reset()")
        try:
            async with conn.transaction():  # a savepoint: if anything fails, the reset below still runs
                created = await conn.fetch(
                    "SELECT h.indexrelid, h.indexname FROM unnest($1::text[]) WITH ORDINALITY AS s(ddl, n) "
                    "CROSS JOIN LATERAL hypopg_create_index(s.ddl) AS h ORDER BY s.n",
                    [ddl for _, ddl in indexes], timeout=backstop,
                )
                raw = await _pg_explain(conn, statement, params, "FORMAT JSON", timeout_ms, generic)
                found = [
                    await conn.fetchval("SELECT hypopg_relation_size($1)", row["indexrelid"]) if sizes else None
                    for row in created
                ]
        finally:
            await conn.execute("SELECT hypopg_reset()")
        used_names: dict[str, str] = {}
        stack = [raw[0]["Plan"]]
        while stack:
            node = stack.pop()
            if node.get("Index Name"):
                used_names.setdefault(str(node["Index Name"]), f"{node.get('Node Type')} on {node.get('Relation Name', '?')}")
            stack.extend(node.get("Plans", []))
        names = [str(row["indexname"]) for row in created]
        return WhatIfPlan(
            cost=float(raw[0]["Plan"]["Total Cost"]),
            used=[name in used_names for name in names],
            sizes=[int(size) if size is not None else None for size in found],
            detail=[used_names.get(name, "") for name in names],
        )

    async def check_index(self, conn: Any, location: str | None, create_statement: str) -> str | None:
        try:
            async with conn.transaction():
                await conn.execute("SELECT hypopg_create_index($1)", create_statement)
        except Exception as exc:  # noqa: BLE001 - the reason is the answer
            return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        finally:
            await conn.execute("SELECT hypopg_reset()")
        return None

    async def top_statements(self, conn: Any, limit: int) -> list[tuple[str, int, float]]:
        """(normalised text, calls, total ms) of this database's costliest statements, from
        pg_stat_statements where an administrator installed it (sqlgate never creates it)."""
        from sqlgate.errors import DatabaseError

        hint = ("an administrator can enable it (shared_preload_libraries = 'pg_stat_statements', then "
                "CREATE EXTENSION pg_stat_statements); or pass the queries themselves in `queries`")
        if not await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"):
            raise DatabaseError("pg_stat_statements is not installed in this database", hint)
        try:
            async with conn.transaction():
                rows = await conn.fetch(
                    "SELECT query, calls, total_exec_time FROM pg_stat_statements WHERE toplevel AND dbid = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "ORDER BY total_exec_time DESC LIMIT $1", limit,
                )
        except Exception as exc:  # noqa: BLE001 - not preloaded, no privilege: say so
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseError(f"pg_stat_statements cannot be read: {first}", hint) from None
        return [(str(r["query"]), int(r["calls"]), float(r["total_exec_time"])) for r in rows]

    # --- end of plans and index advice


async def _pg_explain(conn: Any, statement: exp.Expr, params: dict[str, Any], options: str, timeout_ms: int,
                      generic: bool = False) -> Any:
    """sqlgate's fixed ``EXPLAIN (options)`` before the checked statement, values bound by asyncpg.

    ``generic``: the values are unknown (statements from pg_stat_statements), so plan
    the statement as a prepared statement's generic plan (PostgreSQL 15 has no
    ``EXPLAIN (GENERIC_PLAN)``): PREPARE, EXPLAIN EXECUTE with NULLs, DEALLOCATE, in a
    savepoint, with plan_cache_mode forced for this transaction only.
    """
    backstop = timeout_ms / 1000 + 2
    if generic:
        order: list[str] = []

        def marker(name: str) -> str:
            if name not in order:
                order.append(name)
            return f"${order.index(name) + 1}"

        sql = bind(statement, "postgres", params, marker)
        nulls = ", ".join("NULL" for _ in order)
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await conn.execute(f"PREPARE sqlgate_generic AS {sql}", timeout=backstop)
            try:
                raw = await conn.fetchval(
                    f"EXPLAIN ({options}) EXECUTE sqlgate_generic" + (f"({nulls})" if order else ""),
                    timeout=backstop,
                )
            finally:
                await conn.execute("DEALLOCATE sqlgate_generic")
        return json.loads(raw) if isinstance(raw, str) else raw
    prepared, args = await pg_prepare(conn, statement, params, backstop, prefix=f"EXPLAIN ({options}) ")
    raw = await prepared.fetchval(*args, timeout=backstop)
    return json.loads(raw) if isinstance(raw, str) else raw


async def pg_prepare(
    conn: Any, statement: exp.Expr, params: dict[str, Any], timeout_s: float, prefix: str = "",
    *, cached: bool = False,
) -> tuple[Any, list[Any]]:
    """Prepare ``prefix + statement`` on asyncpg with ``$n`` markers; coerce the values.
    ``cached``: from (and into) the connection's statement cache when it has one."""
    order: list[str] = []

    def marker(name: str) -> str:
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    sql = bind(statement, "postgres", params, marker)
    if cached:
        prepared = await conn._prepare(prefix + sql, timeout=timeout_s, use_cache=True)
    else:
        prepared = await conn.prepare(prefix + sql, timeout=timeout_s)
    types = [t.name for t in prepared.get_parameters()]
    return prepared, [pg_param(params[name], pg_type, name) for name, pg_type in zip(order, types, strict=True)]


def pg_param(value: Any, pg_type: str, name: str | None = None) -> Any:
    """Coerce a JSON argument to the Python type asyncpg wants for ``pg_type``.

    asyncpg encodes parameters in binary and insists on exact types, while agents send
    JSON: ``"2024-01-31"`` for a date, ``"12.50"`` or ``12.5`` for a numeric. The
    statement's parameter types (from the prepared statement) decide the conversion;
    a value that does not convert is an INVALID_ARGUMENT naming the expected type.
    """
    if value is None:
        return None
    where = f"parameter :{name}" if name else "a parameter"
    try:
        if pg_type in ("json", "jsonb"):
            return value if isinstance(value, str) else json.dumps(value)
        if isinstance(value, (dict, list)) and not pg_type.startswith("_"):
            if pg_type not in _PG_TEXT_TYPES:  # an object or array where a scalar belongs
                raise InvalidArgument(
                    f"{where}: {'an object' if isinstance(value, dict) else 'an array'} is not a valid {pg_type}",
                    f"pass a {pg_type} value (a JSON scalar) for it",
                )
            return json.dumps(value)
        if isinstance(value, str) and "\x00" in value and pg_type in _PG_TEXT_TYPES | {"unknown"}:
            raise InvalidArgument(
                f"{where}: PostgreSQL text cannot hold NUL (\\u0000) characters",
                "remove the NUL characters, or pass the value as bytea",
            )
        if isinstance(value, int) and not isinstance(value, bool) and pg_type in _PG_INT_RANGE:
            low, high = _PG_INT_RANGE[pg_type]
            if not low <= value <= high:
                raise InvalidArgument(
                    f"{where}: {value} is out of range for {pg_type}",
                    f"pass an integer between {low} and {high}",
                )
        if pg_type == "bytea":
            return _pg_bytea(value, where)
        if isinstance(value, bool) and pg_type in ("text", "varchar", "bpchar", "name"):
            return "true" if value else "false"  # as PostgreSQL writes a boolean, not Python's "True"
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
            f"{where}: {str(value)[:60]!r} is not a valid {pg_type}: {exc}",
            f"pass a {pg_type} value (dates and times as ISO 8601 strings)",
        ) from None
    return value


_PG_TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name", "json", "jsonb"})
_PG_INT_RANGE = {"int2": (-(2**15), 2**15 - 1), "int4": (-(2**31), 2**31 - 1), "int8": (-(2**63), 2**63 - 1)}


def _pg_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "t", "yes", "y", "1", "on"):
        return True
    if lowered in ("false", "f", "no", "n", "0", "off"):
        return False
    raise ValueError("expected true or false")


def _pg_bytea(value: Any, where: str) -> bytes:
    """Binary values travel as results show them: ``"base64:<base64>"``."""
    if isinstance(value, str) and value.startswith("base64:"):
        try:
            return base64.b64decode(value[7:], validate=True)
        except binascii.Error as exc:
            raise InvalidArgument(f"{where}: the text after base64: is not base64 ({exc})",
                                  'pass binary values as "base64:<base64 text>"') from None
    raise InvalidArgument(f"{where}: {describe(value)} is not a valid bytea",
                          'pass binary values as "base64:<base64 text>" (the form results use)')


def _pg_timestamp(text: str) -> dt.datetime:
    # PostgreSQL ignores an offset written in a timestamp without time zone; so does this
    # (asyncpg refused the aware datetime: "can't subtract offset-naive and offset-aware").
    return dt.datetime.fromisoformat(text).replace(tzinfo=None)


def _pg_timestamptz(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


_PG_FROM_STRING: dict[str, Any] = {
    "date": dt.date.fromisoformat,
    "timestamp": _pg_timestamp,
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


STOP_GRACE_S = 2.0  # after the cancel request, before pg_terminate_backend


async def _pg_ensure_ended(engine: Any, pid: int) -> None:
    """Watch backend ``pid`` from a fresh connection; terminate it if it is still
    active ``STOP_GRACE_S`` after the cancel request."""
    import asyncpg

    from sqlgate.logging import get_logger

    args, kwargs = engine.sync_engine.dialect.create_connect_args(engine.url)
    kwargs = {k: v for k, v in kwargs.items()
              if k in ("host", "port", "user", "password", "database", "ssl", "statement_cache_size")}
    watcher = await asyncpg.connect(*args, **kwargs, timeout=2, server_settings={"application_name": "sqlgate-stop"})
    try:
        loop = asyncio.get_running_loop()
        until = loop.time() + STOP_GRACE_S
        while True:
            state = await watcher.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid, timeout=2)
            if state is None or state in ("idle", "idle in transaction (aborted)"):
                return
            if loop.time() >= until:
                break
            await asyncio.sleep(0.1)
        terminated = await watcher.fetchval("SELECT pg_terminate_backend($1)", pid, timeout=2)
        get_logger("sqlgate.db").warning(
            "a cancelled statement was still running; its backend was terminated", pid=pid,
            terminated=bool(terminated), state=state,
        )
    finally:
        await watcher.close(timeout=2)


def _pg_limit(statement: exp.Expr) -> int | None:
    limit = statement.args.get("limit")
    if not isinstance(limit, exp.Limit):
        return None
    value = limit.args.get("expression")
    return int(value.this) if isinstance(value, exp.Literal) and value.is_int else None


# Rows fetched in one round trip when the column types bound their width (text form).
_PG_ONE_FETCH_BYTES = 1 << 20
_PG_FIRST_CHUNK = 2  # rows of unknown width in the first fetch (2: a one-row answer takes one fetch)
_PG_FIXED_WIDTH = {
    "bool": 6, "int2": 8, "int4": 12, "int8": 21, "oid": 11, "float4": 16, "float8": 25, "date": 14,
    "time": 18, "timetz": 24, "timestamp": 30, "timestamptz": 36, "interval": 64, "uuid": 38, "money": 32,
}


def _pg_row_width(attributes: Sequence[Any]) -> int | None:
    """The widest a row of these column types can be, or None when some type has no bound."""
    width = 2
    for attribute in attributes:
        size = _PG_FIXED_WIDTH.get(attribute.type.name)
        if size is None:
            return None
        width += size + len(attribute.name)
    return width


# ------------------------------------------------------ values cut in the database

# Types whose text form is the value itself (cut as text); bytea is cut as bytes; any other
# type without a bounded width (numeric, json, arrays, ranges, records, user types) is
# measured and cut in its JSON text form, which is what a too-long one becomes anyway.
_PG_TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name", "citext", "xml", "unknown"})


@dataclass(frozen=True)
class PgBounded:
    sql: str
    # Per result column: the index of the value as it is, or (value if short, cut text or
    # bytes if long, the full length if long, bytes?) indexes in the bounded row.
    unfold: tuple[int | tuple[int, int, int, bool], ...]


@functools.lru_cache(maxsize=512)
def _pg_bounded_cached(query: str, types: tuple[str, ...], limit: int) -> PgBounded:
    select: list[str] = []
    unfold: list[int | tuple[int, int, int, bool]] = []
    for index, type_name in enumerate(types):
        col = f"sqlgate_q.c{index}"
        if _PG_FIXED_WIDTH.get(type_name) is not None:
            unfold.append(len(select))
            select.append(col)
            continue
        if type_name == "bytea":
            size, cut, length = f"octet_length({col})", f"substring({col} from 1 for {limit + 1})", f"octet_length({col})"
        elif type_name in _PG_TEXT_TYPES:
            size, cut, length = f"octet_length({col}::text)", f"left({col}::text, {limit + 1})", f"char_length({col}::text)"
        else:
            text = f"to_json({col})::text"
            size, cut, length = f"octet_length({text})", f"left({text}, {limit + 1})", f"char_length({text})"
        long = f"{size} > {limit}"
        unfold.append((len(select), len(select) + 1, len(select) + 2, type_name == "bytea"))
        select += [f"CASE WHEN {long} THEN NULL ELSE {col} END", f"CASE WHEN {long} THEN {cut} END",
                   f"CASE WHEN {long} THEN {length} END"]
    names = ", ".join(f"c{i}" for i in range(len(types)))
    # The statement on lines of its own: a trailing -- comment ends before the parenthesis.
    return PgBounded(f"SELECT {', '.join(select)} FROM (\n{query}\n) AS sqlgate_q({names})", tuple(unfold))


def pg_bounded(query: str, attributes: Sequence[Any], limit: int) -> PgBounded:
    """``query`` wrapped in a projection that cuts every value of an unbounded type past
    ``limit`` bytes in the database and reports its full length (the marker's count)."""
    return _pg_bounded_cached(query, tuple(a.type.name for a in attributes), limit)


class _Unfolding:
    """A RowBudget seen through a bounded query: each fetched row is turned back into the
    statement's own columns (a long value as its cut text or bytes, knowing its length)."""

    def __init__(self, budget: RowBudget, unfold: tuple[int | tuple[int, int, int, bool], ...]) -> None:
        self.budget = budget
        self.unfold = unfold
        # A row with no long value (its cut columns all NULL, the common case) is its
        # value columns, picked by one C-level call.
        values = [where if isinstance(where, int) else where[0] for where in unfold]
        cuts = [where[1] for where in unfold if not isinstance(where, int)]
        self._values: Callable[[Sequence[Any]], Sequence[Any]] = (
            operator.itemgetter(*values) if len(values) > 1 else lambda row: (row[values[0]],)
        )
        # itemgetter of one index gives the value, of several a tuple
        self._cuts = operator.itemgetter(*cuts) if cuts else lambda row: None
        self._no_cuts = (None,) * len(cuts) if len(cuts) > 1 else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.budget, name)

    def take(self, rows: Sequence[Sequence[Any]]) -> bool:
        values, cuts, no_cuts, slow = self._values, self._cuts, self._no_cuts, self._unfold
        return self.budget.take([values(row) if cuts(row) == no_cuts else slow(row) for row in rows])

    def _unfold(self, row: Sequence[Any]) -> Sequence[Any]:
        out = []
        for where in self.unfold:
            if isinstance(where, int):
                out.append(row[where])
                continue
            value, cut, length, binary = where
            if row[cut] is None:
                out.append(row[value])
            else:
                out.append((LongBytes if binary else LongText)(row[cut], int(row[length])))
        return out


async def _pg_first_rows(prepared: Any, args: list[Any], budget: RowBudget, backstop: float) -> bool:
    """Most reads return a row or two: fetch the first chunk in one round trip (an unnamed
    portal with a row limit, as asyncpg's fetchrow does). True when that settled the
    result (it was complete, or the budget is full)."""
    wanted = budget.chunk(first=_PG_FIRST_CHUNK)
    rows, status, completed = await prepared._PreparedStatement__do_execute(
        lambda protocol: protocol.bind_execute(prepared._state, args, "", wanted, True, backstop)
    )
    prepared._last_status = status
    return not budget.take(rows) or bool(completed)


async def _pg_stream(prepared: Any, args: list[Any], budget: RowBudget, backstop: float, *, close: bool) -> None:
    """Fetch through a cursor (portal) in chunks the budget sizes; with ``close``, close the
    portal where the budget stopped (the caller's transaction goes on)."""
    cursor = await prepared.cursor(*args, timeout=backstop)
    while True:
        wanted = budget.chunk(first=_PG_FIRST_CHUNK)
        chunk = await cursor.fetch(wanted, timeout=backstop)
        if not budget.take(chunk) or len(chunk) < wanted:
            break
    if close and budget.full:
        await cursor._close_portal(backstop)  # asyncpg's own portal close (CLOSE portal)


# ------------------------------------------------------------- bulk insert helpers

_PG_MAX_PARAMS = 32_767
_COPY_LINE = re.compile(r"\bline (\d+)")
_PG_NATIVE: dict[str, frozenset[type]] = {
    "int2": frozenset({int}), "int4": frozenset({int}), "int8": frozenset({int}),
    "text": frozenset({str}), "varchar": frozenset({str}), "bpchar": frozenset({str}), "name": frozenset({str}),
    "float4": frozenset({float}), "float8": frozenset({float}), "bool": frozenset({bool}),
}
# Whole-column conversions done in C when every value is a string (the common case:
# JSON has no dates or decimals); a value that does not convert falls back to pg_param,
# which names it in the error.
_PG_FROM_STRINGS: dict[str, Callable[[str], Any]] = {
    "date": dt.date.fromisoformat,
    "timestamp": _pg_timestamp,
    "time": dt.time.fromisoformat,
    "numeric": decimal.Decimal,
    "uuid": uuid.UUID,
}
_NONE = type(None)


def _pg_column(values: Sequence[Any], pg_type: str) -> Sequence[Any]:
    """Coerce one column of JSON values to what asyncpg's binary codec wants for pg_type."""
    found = set(map(type, values))
    if found - {_NONE} <= _PG_NATIVE.get(pg_type, frozenset()):
        return values
    if found == {str} and pg_type in _PG_FROM_STRINGS:
        try:
            return list(map(_PG_FROM_STRINGS[pg_type], values))
        except (ValueError, ArithmeticError):
            pass
    return [None if v is None else pg_param(v, pg_type) for v in values]


def _pg_records(rows: list[tuple[Any, ...]], types: list[str]) -> list[tuple[Any, ...]]:
    columns = [_pg_column(values, pg_type) for values, pg_type in zip(zip(*rows, strict=True), types, strict=True)]
    return list(zip(*columns, strict=True))


class _CsvNull(float):
    """Written by the csv module as an unquoted empty field: NULL in PostgreSQL's CSV COPY
    (QUOTE_NONNUMERIC quotes every string, so an empty string stays an empty string)."""

    def __str__(self) -> str:
        return ""

    __repr__ = __str__


_CSV_NULL = _CsvNull()
_CSV_SAFE = frozenset({str, int, float, bool, _NONE})
# Columns whose text input differs from how execute_query converts JSON (naive timestamps
# with time zone are UTC there), or that JSON cannot express as text: the binary path.
_CSV_UNSAFE_TYPES = ("bytea", "timestamptz")


async def _chunks(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    # An async source: asyncpg reads a file-like source through a thread, twice per COPY.
    for start in range(0, len(data), size):
        yield data[start:start + size]


def _csv_ok(rows: Iterable[tuple[Any, ...]], types: list[str]) -> set[type] | None:
    """The value types in ``rows`` when all of them can go to COPY as CSV text, else None."""
    if any(t in _CSV_UNSAFE_TYPES or t.startswith("_") for t in types):
        return None
    rows = rows if isinstance(rows, list) else list(rows)  # read twice when it holds booleans
    kinds = set(map(type, itertools.chain.from_iterable(rows)))
    if not kinds <= _CSV_SAFE:
        return None
    if float in kinds and any(t in ("int2", "int4", "int8") for t in types):
        return None  # 12.0 for an integer: converted in Python, PostgreSQL's text input refuses it
    if bool in kinds and any(types[i] != "bool" for i in _bool_columns(rows)):
        return None  # csv writes True: "True" in a text column, refused by integer, numeric and json input
    return kinds


def _bool_columns(rows: Iterable[tuple[Any, ...]]) -> set[int]:
    return {i for row in rows for i, value in enumerate(row) if type(value) is bool}


def _pg_csv(rows: list[tuple[Any, ...]], types: list[str], kinds: set[type] | None = None) -> bytes | None:
    """The rows as CSV for COPY, or None when a value needs converting in Python first."""
    kinds = kinds or _csv_ok(rows, types)
    if kinds is None:
        return None
    if _NONE in kinds:
        columns = [
            [_CSV_NULL if v is None else v for v in values] if None in values else values
            for values in zip(*rows, strict=True)
        ]
        rows = list(zip(*columns, strict=True))
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def _pg_chunks(
    records: list[tuple[Any, ...]], size: int, key_at: list[int] | None
) -> list[list[tuple[Any, ...]]]:
    """Statements of at most ``size`` rows; with ``key_at``, a repeated conflict key starts
    a new statement (ON CONFLICT DO UPDATE cannot touch one row twice in one statement)."""
    chunks: list[list[tuple[Any, ...]]] = []
    current: list[tuple[Any, ...]] = []
    seen: set[Any] = set()
    for record in records:
        key = tuple(_hashable(record[i]) for i in key_at) if key_at else None
        if current and (len(current) >= size or (key is not None and key in seen)):
            chunks.append(current)
            current, seen = [], set()
        current.append(record)
        if key is not None:
            seen.add(key)
    if current:
        chunks.append(current)
    return chunks


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) else value


# admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
_PG_UNAVAILABLE = frozenset({"57P01", "57P02", "57P03", "53300"})


# ------------------------------------------------ connecting: TLS and transaction poolers
# The URL spells TLS the libpq way (sslmode, sslrootcert, sslcert, sslkey); asyncpg is
# handed an SSL context it must use, so sslmode=require and above never fall back to
# plaintext. Behind a transaction pooler (PgBouncer transaction mode, the pooled
# endpoints of Supabase and Neon) no named prepared statement survives a transaction:
# asyncpg runs with statement_cache_size=0 (unnamed statements, parsed in the same
# round trip as their execution), the startup packet carries only what poolers accept,
# and the session defaults are set per transaction (SET LOCAL).

PG_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# URL parameters sqlgate reads itself; asyncpg never sees them.
PG_URL_OPTIONS = (
    "sslmode", "ssl", "sslrootcert", "sslcert", "sslkey", "pgbouncer", "prepared_statements",
    "application_name", "connect_timeout", "channel_binding",
)
# Passed on to asyncpg / SQLAlchemy as they are.
PG_DRIVER_OPTIONS = ("target_session_attrs", "prepared_statement_cache_size")
# Startup parameters PgBouncer accepts (anything else: "unsupported startup parameter").
POOLER_STARTUP = frozenset({"client_encoding", "datestyle", "timezone", "standard_conforming_strings", "application_name"})


def pg_behind_pooler(url: URL) -> bool:
    """True when the URL's database is reached through a transaction pooler: the URL says
    so (``prepared_statements=false``, Prisma's ``pgbouncer=true``) or the host is a known
    transaction pooler endpoint (Supabase port 6543, Neon ``-pooler`` hosts)."""
    query = url.query
    explicit = tls.flag(query, "prepared_statements")
    if explicit is not None:
        return not explicit
    if tls.flag(query, "pgbouncer"):
        return True
    host = (url.host or "").lower()
    return ("-pooler." in host and host.endswith(".neon.tech")) or (
        host.endswith("pooler.supabase.com") and url.port == 6543
    )


def pg_sslmode(url: URL) -> str | None:
    query = url.query
    mode = tls.one(query, "sslmode")
    if mode is not None:
        return tls.choice("sslmode", mode, PG_SSLMODES)
    legacy = tls.one(query, "ssl")  # asyncpg's own spelling: ssl=true / ssl=require
    if legacy is None:
        return None
    if legacy.strip().lower() in ("true", "1", "on", "yes"):
        return "require"
    if legacy.strip().lower() in ("false", "0", "off", "no"):
        return "disable"
    return tls.choice("ssl", legacy, PG_SSLMODES)


def pg_connect_options(url: URL) -> dict[str, Any]:
    """asyncpg connect arguments for the URL's TLS and pooler options (ConfigError for a
    misspelled mode or an unreadable certificate file)."""
    query = url.query
    tls.refuse_unknown(query, PG_URL_OPTIONS + PG_DRIVER_OPTIONS, "PostgreSQL")
    opts: dict[str, Any] = {}
    if tls.one(query, "channel_binding") is not None and tls.choice(
        "channel_binding", tls.one(query, "channel_binding") or "", ("disable", "prefer", "require")
    ) == "require":
        raise ConfigError(
            "channel_binding=require cannot be honoured: asyncpg does not do SCRAM channel binding",
            "remove channel_binding=require and use sslmode=verify-full, which also stops a man in the middle",
        )
    if tls.one(query, "application_name") is not None:
        opts["sqlgate_server_settings"] = {"application_name": tls.one(query, "application_name")}
    if tls.one(query, "connect_timeout") is not None:
        try:
            opts["timeout"] = float(tls.one(query, "connect_timeout") or "")
        except ValueError:
            raise ConfigError("connect_timeout in the URL is not a number of seconds",
                              "write connect_timeout=10") from None
    mode = pg_sslmode(url)
    rootcert, cert, key = tls.one(query, "sslrootcert"), tls.one(query, "sslcert"), tls.one(query, "sslkey")
    if mode == "disable":
        if rootcert or cert:
            raise ConfigError("sslmode=disable contradicts the certificates given in the URL",
                              "drop sslrootcert/sslcert, or use sslmode=verify-full")
        opts["ssl"] = False
    elif mode in ("allow", "prefer"):
        opts["ssl"] = mode  # opportunistic by definition (libpq semantics): asyncpg's own
    elif mode is not None:
        # libpq: sslmode=require with a root certificate verifies the chain (verify-ca).
        verify_cert = mode in ("verify-ca", "verify-full") or rootcert is not None
        opts["ssl"] = tls.context(
            verify_cert=verify_cert, verify_host=mode == "verify-full", ca=rootcert, cert=cert, key=key,
            param="sslrootcert",
        )
    elif rootcert or cert:
        raise ConfigError("the URL gives TLS certificates but no sslmode",
                          "add sslmode=verify-full (or verify-ca / require) to the URL")
    if pg_behind_pooler(url):
        opts["statement_cache_size"] = 0  # unnamed statements only
        opts["prepared_statement_cache_size"] = 0  # SQLAlchemy's own cache of them
    return opts


@functools.cache
def _asyncpg_dialect() -> Any:
    from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

    Base: Any = PGDialect_asyncpg

    class SqlgateAsyncpgDialect(Base):  # type: ignore[misc]
        """SQLAlchemy's asyncpg dialect reading the URL's TLS and pooler options: every engine
        sqlgate creates (pool, health probes, audit sink, migrations, cancel watchers) gets
        them from the URL alone. Registered as ``postgresql+asyncpg`` (dialects/__init__.py)."""

        supports_statement_cache = True  # nothing here changes how SQL is compiled

        def create_connect_args(self, url: URL) -> Any:
            args, opts = super().create_connect_args(url.difference_update_query(PG_URL_OPTIONS))
            opts.update(pg_connect_options(url))
            return args, opts

        def connect(self, *cargs: Any, **cparams: Any) -> Any:
            extra = cparams.pop("sqlgate_server_settings", None)  # application_name from the URL
            if extra:
                cparams["server_settings"] = {**extra, **(cparams.get("server_settings") or {})}
            if cparams.get("statement_cache_size") == 0 and isinstance(cparams.get("server_settings"), dict):
                cparams["server_settings"] = {
                    k: v for k, v in cparams["server_settings"].items() if k.lower() in POOLER_STARTUP
                }
            return super().connect(*cargs, **cparams)

    return SqlgateAsyncpgDialect


def __getattr__(name: str) -> Any:
    # SQLAlchemy's registry loads ``SqlgateAsyncpgDialect`` from this module by name
    # (dialects/__init__.py): SQLAlchemy's PostgreSQL dialect is
    # imported when an engine needs it, not whenever sqlgate starts.
    if name == "SqlgateAsyncpgDialect":
        return _asyncpg_dialect()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _register_infinities() -> None:
    """asyncpg decodes 'infinity' / '-infinity' timestamps and dates as its own singletons
    (datetime.max / .min alike): results show them as PostgreSQL writes them."""
    from asyncpg.pgproto import pgproto

    register_infinite(pgproto.infinity_datetime, "infinity")
    register_infinite(pgproto.negative_infinity_datetime, "-infinity")
    register_infinite(pgproto.infinity_date, "infinity")
    register_infinite(pgproto.negative_infinity_date, "-infinity")


def _raised_by_a_decoder(exc: BaseException) -> bool:
    """Whether ``exc`` came out of one of asyncpg's value codecs (not sqlgate's own code):
    the innermost frame's file (no source lines read, unlike traceback.extract_tb)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return "/codecs/" in tb.tb_frame.f_code.co_filename.replace("\\", "/")


class PostgresPoolerDialect(PostgresDialect):
    """PostgreSQL behind a transaction pooler: a server connection is ours only inside a
    transaction, so every statement runs in one and the session defaults (read-only,
    statement timeout, jit) are set there with SET LOCAL, never per session."""

    autocommit_reads = False

    def __init__(self) -> None:
        super().__init__()
        self.read_only_database = False

    def engine_kwargs(self, read_only: bool, timeout_ms: int) -> dict[str, Any]:
        self.read_only_database = read_only
        return {"connect_args": {"server_settings": {"standard_conforming_strings": "on"}}}

    async def begin(
        self, conn: Any, *, read_only: bool, isolation: str | None, timeout_ms: int, default_timeout_ms: int
    ) -> Any:
        transaction = conn.transaction(isolation=isolation, readonly=read_only or self.read_only_database)
        await transaction.start()
        await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}; SET LOCAL jit = off")
        return transaction
