"""The guarded executor every tool uses to run validated SQL.

``GuardedTransaction`` checks a connection out of the database's pool, opens a
transaction (read-only when the policy says so, with the statement timeout set inside
the database), runs ``Verdict``s on it with a bounded fetch, and commits or rolls back.
``execute`` is one call: a lone read on a pooled connection, else a transaction. Every
step passes the execution boundary (``db.boundary``): one deadline per call, errors
mapped at one place, cancelled work stopped in the database.
Nothing here accepts raw SQL text: only verdicts that ``safety.check`` produced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc as sa_exc

from sqlgate.db import boundary
from sqlgate.db.dialects import ISOLATION_LEVELS, RawResult
from sqlgate.db.parameters import check_values
from sqlgate.db.results import RowBudget
from sqlgate.errors import InvalidArgument, PoolExhausted, SqlgateError
from sqlgate.safety.rules import READ_KINDS

if TYPE_CHECKING:
    from sqlgate.db.engines import Database
    from sqlgate.safety.verdict import Verdict

FETCH_MODES = ("all", "one", "scalar", "none")
_READ_KINDS = frozenset(READ_KINDS.values()) | {"explain", "describe"}


@dataclass
class StatementResult:
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    row_count: int = 0
    truncated: bool = False
    truncated_by: str | None = None
    truncated_values: int = 0  # values cut at max_value_bytes
    rows_affected: int | None = None
    statement_kind: str = ""
    duration_ms: float = 0.0


# The most values one call may bind (SQLite's connections are capped the same way).
MAX_PARAMETERS = 1_000


def listed(names: Iterable[str], most: int = 20) -> str:
    """``a, b, c and 97 more``: a list cut so an error message stays small (≤ 2 KB)."""
    items = list(names)
    shown = ", ".join(str(n)[:64] for n in items[:most])
    return f"{shown} and {len(items) - most} more" if len(items) > most else shown


def check_parameters(verdict: Verdict, params: dict[str, Any] | None) -> dict[str, Any]:
    params = dict(params or {})
    if len(params) > MAX_PARAMETERS:
        raise InvalidArgument(
            f"{len(params):,} parameters were passed; the limit is {MAX_PARAMETERS:,}",
            "pass only the values the query's placeholders use; load long value lists with bulk_insert "
            "into a table and join it",
        )
    extra = sorted(set(params) - set(verdict.parameters))
    if extra:
        expected = listed(f":{p}" for p in verdict.parameters) or "none"
        raise InvalidArgument(
            f"parameter(s) not used by the query: {listed(extra)}",
            f"the query's placeholders are: {expected}",
        )
    check_values(params)  # 1e400, 10**30, lone surrogates: INVALID_ARGUMENT before any driver
    if verdict.bound:  # literals the verdict cache hoisted into parameters (safety.shapes)
        params.update(verdict.bound)
    return params


class GuardedTransaction:
    """One transaction on one pooled connection. Use ``async with`` or call close().

    Every step (begin, each statement, commit, rollback) runs through the execution
    boundary (``db.boundary``) under the transaction's current deadline: ``start`` sets
    one for the call that opens it; ``rearm`` gives each later call (an interactive
    transaction's next tool call) its own.
    """

    def __init__(
        self,
        database: Database,
        *,
        read_only: bool | None = None,
        isolation: str | None = None,
        timeout_ms: int | None = None,
    ) -> None:
        if isolation is not None and isolation not in ISOLATION_LEVELS:
            raise InvalidArgument(
                f"unknown isolation level {isolation!r}", f"use one of: {', '.join(ISOLATION_LEVELS)}"
            )
        self.database = database
        self.read_only = database.policy.read_only if read_only is None else read_only
        self.isolation = isolation
        self.timeout_ms = timeout_ms or database.policy.statement_timeout_ms
        self.deadline: boundary.Deadline | None = None
        self._lease: boundary.Lease | None = None
        self._state: Any = None
        self._direct = False
        self.active = False

    def rearm(self) -> None:
        """A fresh deadline (``timeout_ms`` from now) for the next call on this transaction."""
        self.deadline = boundary.Deadline(self.timeout_ms)

    async def start(self) -> GuardedTransaction:
        self.rearm()
        assert self.deadline is not None
        lease = self._lease = await boundary.checkout(self.database, self.deadline)
        try:
            async with boundary.guarded(lease, self.deadline):
                self._state = await self.database.driver.begin(
                    lease.conn,
                    read_only=self.read_only,
                    isolation=self.isolation,
                    timeout_ms=self.timeout_ms,
                    default_timeout_ms=self.database.policy.statement_timeout_ms,
                )
        except BaseException:
            await lease.discard(cancel=False)  # no-op when the boundary already discarded it
            raise
        self.active = True
        return self

    def step(self) -> AbstractAsyncContextManager[None]:
        """The boundary for sqlgate's own driver calls on ``connection`` (bulk COPY,
        EXPLAIN capture): this call's deadline, error mapping, cancel in the database."""
        if not self.active or self._lease is None or self.deadline is None:
            raise InvalidArgument("the transaction is no longer active", "start a new one")
        return boundary.guarded(self._lease, self.deadline)

    async def run(
        self,
        verdict: Verdict,
        params: dict[str, Any] | None = None,
        *,
        fetch_mode: str = "all",
        max_rows: int | None = None,
        max_result_bytes: int | None = None,
    ) -> StatementResult:
        if not self.active:
            raise InvalidArgument("the transaction is no longer active", "start a new one")
        try:
            async with self.step():
                try:
                    return await run_statements(
                        self.database, self.connection, verdict, params, fetch_mode, max_rows,
                        max_result_bytes, self.timeout_ms,
                    )
                except ResultCut as cut:  # the statement holds the connection: it cannot go on
                    self.active = False
                    assert self._lease is not None
                    await self._lease.discard(cancel=True)
                    return cut.result
        except BaseException:
            # The statement failed: the transaction is now unusable on PostgreSQL and
            # must not be half-committed anywhere. Roll back and give the connection up.
            await self.rollback()
            raise

    @property
    def connection(self) -> Any:
        """The driver connection of this transaction, for sqlgate's own fixed SQL around a
        verdict (query_optimization's EXPLAIN wrapper); never for agent-supplied text.
        Wrap such calls in ``step()``."""
        if not self.active or self._lease is None or not self._lease.alive:
            raise InvalidArgument("the transaction is no longer active", "start a new one")
        # Work done directly on the connection (a bulk insert's batches) keeps its own
        # time limits and may outlast the opening call's deadline: the commit or
        # rollback that follows gets a fresh one.
        self._direct = True
        return self._lease.conn

    async def commit(self) -> None:
        if not self.active:
            return
        if self._direct:
            self.rearm()
        lease, deadline = self._lease, self.deadline
        assert lease is not None and deadline is not None
        self.active = False
        try:
            async with boundary.guarded(lease, deadline):
                await self.database.driver.commit(lease.conn, self._state)
        except BaseException:
            await lease.discard(cancel=False)  # whether it committed is unknown: never reuse
            raise
        await lease.release()

    async def rollback(self) -> None:
        """Roll back (bounded by the current deadline) and give the connection up; if
        the deadline is spent or the rollback fails, discard the connection instead
        (closing it rolls back in the database). Never raises an error."""
        was_active, self.active = self.active, False
        lease = self._lease
        if lease is None or not lease.alive:
            return
        if not was_active:
            await lease.release()
            return
        if self._direct:
            self.rearm()
        remaining = self.deadline.remaining() if self.deadline is not None else 0.0
        if remaining <= 0:
            await lease.discard(cancel=True)
            return
        try:
            async with asyncio.timeout(remaining):
                await self.database.driver.rollback(lease.conn, self._state)
        except BaseException as exc:
            await lease.discard(cancel=True)
            if not isinstance(exc, Exception):
                raise  # cancelled: the connection is gone, the cancellation goes on
            return
        await lease.release()

    async def __aenter__(self) -> GuardedTransaction:
        return await self.start()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None and self.active:
            await self.commit()
        else:
            await self.rollback()


async def run_statements(
    database: Database,
    conn: Any,
    verdict: Verdict,
    params: dict[str, Any] | None,
    fetch_mode: str,
    max_rows: int | None,
    max_result_bytes: int | None,
    timeout_ms: int,
) -> StatementResult:
    """Run each statement of ``verdict`` on ``conn``; the result is the last one's."""
    if fetch_mode not in FETCH_MODES:
        raise InvalidArgument(f"unknown fetch_mode {fetch_mode!r}", f"use one of: {', '.join(FETCH_MODES)}")
    params = check_parameters(verdict, params)
    cap = min(max_rows or database.policy.max_rows, database.policy.max_rows)
    fetch = {"one": 1, "scalar": 1, "none": 0}.get(fetch_mode, cap)
    max_bytes = max_result_bytes or database.max_result_bytes
    started = time.perf_counter()
    raw = RawResult([], [], None, False)
    budget = RowBudget(1, max_bytes, database.max_value_bytes)
    affected_total: int | None = None
    try:
        for statement in verdict.expressions:
            # Each driver binds only the placeholders its statement has (from the cached
            # SQL template); the other statements' values are simply not used. Rows are
            # converted and sized as they arrive (db.results.RowBudget): the fetch stops
            # at the row cap or the byte budget, whichever comes first.
            budget = RowBudget(max(fetch, 1), max_bytes, database.max_value_bytes)
            raw = await database.driver.execute(conn, statement, params, budget, timeout_ms)
            if raw.unread:
                # The statement still holds the connection: stop it in the database.
                raise ResultCut(shape(raw, budget, verdict, fetch_mode, affected_total, started))
            if raw.rows_affected is not None and raw.rows_affected >= 0:
                affected_total = (affected_total or 0) + raw.rows_affected
    except SqlgateError:
        raise
    except ResultCut:
        raise
    except Exception as exc:  # driver errors; cancellation propagates untouched
        raise database.map_error(exc, timeout_ms) from exc
    finally:
        # health_check's slow-query count: every statement sqlgate runs for a tool passes
        # here (timeouts included), whatever the driver; one float compare per call.
        if time.perf_counter() - started > database.slow_query_s:
            database.slow_queries += 1
    return shape(raw, budget, verdict, fetch_mode, affected_total, started)


class ResultCut(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The budget stopped a fetch the driver cannot end by itself (rows left unread on
    the connection): the boundary cancels the statement and discards the connection,
    then the result goes out."""

    def __init__(self, result: StatementResult) -> None:
        super().__init__("result cut by the byte budget")
        self.result = result


def shape(
    raw: RawResult,
    budget: RowBudget,
    verdict: Verdict,
    fetch_mode: str,
    affected: int | None,
    started: float,
) -> StatementResult:
    kind = verdict.statement_kind
    rows: list[list[Any]] = []
    truncated_by = None
    if fetch_mode != "none":
        rows = raw.rows
        if budget.truncated_by == "max_result_bytes" or (budget.truncated_by and fetch_mode == "all"):
            truncated_by = budget.truncated_by
        if fetch_mode in ("one", "scalar"):
            rows = rows[:1]
    is_read = kind in _READ_KINDS
    return StatementResult(
        columns=raw.columns,
        rows=rows,
        row_count=len(rows),
        truncated=truncated_by is not None,
        truncated_by=truncated_by,
        truncated_values=budget.truncated_values if fetch_mode != "none" else 0,
        rows_affected=None if is_read else affected,
        statement_kind=kind,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )


async def execute(
    database: Database,
    verdict: Verdict,
    params: dict[str, Any] | None = None,
    *,
    fetch_mode: str = "all",
    max_rows: int | None = None,
    timeout_ms: int | None = None,
    max_result_bytes: int | None = None,
) -> StatementResult:
    """Run one validated call: the fast path for a plain read, else a full transaction."""
    timeout_ms = timeout_ms or database.policy.statement_timeout_ms
    default_timeout = timeout_ms == database.policy.statement_timeout_ms
    plain_read = (
        len(verdict.expressions) == 1
        and verdict.statement_kind in _READ_KINDS
        and not verdict.writes
        and default_timeout
        and database.driver.autocommit_reads
    )
    if plain_read:
        # The session defaults set at connect (read-only, statement timeout) already
        # hold; a lone read needs no explicit transaction (one round trip, not three).
        async with boundary.call(database, timeout_ms) as lease:
            await database.driver.prepare_read(lease.conn, timeout_ms)
            try:
                result = await run_statements(
                    database, lease.conn, verdict, params, fetch_mode, max_rows, max_result_bytes, timeout_ms
                )
                lease.nothing_open = database.driver.autocommit_reads
                return result
            except ResultCut as cut:
                await lease.discard(cancel=True)  # stop the rest in the database; never pool it
                return cut.result
    async with GuardedTransaction(database, timeout_ms=timeout_ms) as tx:
        return await tx.run(
            verdict, params, fetch_mode=fetch_mode, max_rows=max_rows, max_result_bytes=max_result_bytes
        )


def pool_timeout_error(exc: sa_exc.TimeoutError, database: Database) -> PoolExhausted:
    return PoolExhausted(
        f"no free connection to database {database.name!r} within the pool timeout",
        "retry shortly; too many calls are running at once",
    )
