"""bulk_insert: many rows into one whitelisted table, fast, all-or-nothing by default."""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pydantic_core
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from sqlgate.db import bulk
from sqlgate.db.guard import GuardedTransaction
from sqlgate.db.interactive import failed_commit
from sqlgate.db.schema import table_info
from sqlgate.errors import InvalidArgument, OperationFailed, PolicyViolation, SqlgateError
from sqlgate.tools.base import database_for, record, runtime, tool_result

if TYPE_CHECKING:
    from sqlgate.db.engines import Database
    from sqlgate.db.schema import ColumnInfo, TableInfo


class FailedBatch(BaseModel):
    batch: int  # 1-based
    first_record: int  # 0-based index into `records`
    last_record: int
    code: str
    message: str


class BulkInsertResult(BaseModel):
    table: str
    inserted: int
    updated: int
    skipped: int
    batches: int
    committed_batches: int
    duration_ms: float
    rows_per_second: float
    on_conflict: str
    conflict_columns: list[str] | None = None
    failed_batches: list[FailedBatch] | None = None
    hint: str | None = None


DESCRIPTION = """Insert many rows into one table: `records` is a list of {column: value} objects, sent in
batches. `on_conflict`: error (default), ignore, or update (`update_columns`; key:
`conflict_columns`, default the primary key). `atomic` (default true): all or nothing;
false commits each batch and reports `failed_batches`.
"""


async def bulk_insert(
    table: Annotated[str, Field(description="Table to insert into (`name` or `schema.name`)")],
    records: Annotated[
        list[dict[str, Any]], Field(min_length=1, description="Rows as objects: column name -> value")
    ],
    ctx: Context[Any],
    batch_size: Annotated[int, Field(ge=1, le=100_000, description="Rows per batch")] = 1000,
    on_conflict: Annotated[
        Literal["error", "ignore", "update"],
        Field(description="On a duplicate key: fail (error), keep the old row (ignore), overwrite (update)"),
    ] = "error",
    conflict_columns: Annotated[
        list[str] | None, Field(description="Key columns for conflicts (default: primary key / matching unique)")
    ] = None,
    update_columns: Annotated[
        list[str] | None, Field(description="Columns to overwrite on conflict (default: inserted non-key columns)")
    ] = None,
    atomic: Annotated[bool, Field(description="All batches in one transaction (true) or commit per batch")] = True,
    database: Annotated[
        str | None, Field(description="Name of a configured database (default: the first)")
    ] = None,
) -> Annotated[CallToolResult, BulkInsertResult]:
    started = time.perf_counter()
    db = await database_for(ctx, database)
    record(statement_kind="insert", rows=None)
    if db.policy.read_only:
        raise PolicyViolation(
            f"database {db.name!r} is read-only; bulk_insert writes data",
            "only queries are allowed here; ask the operator for read_write mode if you must change data",
            code="WRITE_NOT_ALLOWED",
        )
    settings = runtime(ctx).settings
    if len(records) > settings.bulk_max_records:
        raise InvalidArgument(
            f"{len(records)} records in one call; the limit is {settings.bulk_max_records}",
            f"split the rows into calls of at most {settings.bulk_max_records} records",
        )
    uniform = _uniform_rows(records)  # every record has the same keys: the usual case
    _check_size(records, uniform, settings.bulk_max_payload_bytes)
    info = await table_info(db, table)
    record(tables=[info.name if not info.schema else f"{info.schema}.{info.name}"])
    if info.is_view:
        raise InvalidArgument(f"{table} is a view", "bulk_insert writes tables; insert into the base table")
    columns_of = _column_mapper(db, info, records[:1] if uniform is not None else records)
    keys = _conflict_columns(info, columns_of, on_conflict, conflict_columns)
    updates = _update_columns(db, info, columns_of, keys, on_conflict, update_columns)

    plans: dict[tuple[str, ...], bulk.InsertPlan] = {}

    def plan_for(columns: tuple[str, ...]) -> bulk.InsertPlan:
        plan = plans.get(columns)
        if plan is None:
            plan = plans[columns] = bulk.build_insert(
                db, info, columns, on_conflict, keys, [c for c in updates if c in columns]
            )
            record(sql=plan.verdict.sql, verdict="allowed")
        return plan

    batches: list[list[tuple[bulk.InsertPlan, list[tuple[Any, ...]]]]] = []
    shapes = {columns for columns, _, _ in columns_of.values()}
    if len(shapes) == 1:  # the usual case: every record has the same columns
        [(columns, source, getter)] = [columns_of[tuple(records[0])]]
        if uniform is not None and source == tuple(records[0]):
            rows = uniform  # already in table column order
        elif uniform is not None or len(columns_of) == 1:
            rows = list(map(getter, records))
        else:  # same keys, different order
            rows = [columns_of[tuple(item)][2](item) for item in records]
        plan = plan_for(columns)
        batches = [[(plan, rows[i:i + batch_size])] for i in range(0, len(rows), batch_size)]
    else:  # group each batch's records by their column set (one statement shape each)
        for start in range(0, len(records), batch_size):
            groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            for item in records[start:start + batch_size]:
                columns, _, getter = columns_of[tuple(item)]
                groups.setdefault(columns, []).append(getter(item))
            batches.append([(plan_for(columns), rows) for columns, rows in groups.items()])

    counts, committed, failed = await _run(ctx, db, batches, batch_size, len(records), atomic)
    elapsed = time.perf_counter() - started
    written = counts.inserted + counts.updated
    record(rows_affected=written)
    hint = None
    if failed:
        hint = (
            f"batches 1-{committed} are committed; batch {failed[0].batch} failed and nothing after it "
            f"was tried: fix it and resume from record {failed[0].first_record}"
            if committed else f"batch 1 failed and nothing was written: {failed[0].message}"
        )
    return tool_result(
        BulkInsertResult(
            table=info.name,
            inserted=counts.inserted,
            updated=counts.updated,
            skipped=counts.skipped,
            batches=len(batches),
            committed_batches=committed,
            duration_ms=round(elapsed * 1000, 3),
            rows_per_second=round((counts.inserted + counts.updated + counts.skipped) / elapsed, 1)
            if elapsed > 0 else 0.0,
            on_conflict=on_conflict,
            conflict_columns=list(keys) or None,
            failed_batches=failed or None,
            hint=hint,
        )
    )


def _check_size(records: list[dict[str, Any]], uniform: list[tuple[Any, ...]] | None, max_bytes: int) -> None:
    """Refuse records whose compact JSON is larger than ``max_bytes``."""
    if uniform is not None:
        # Same keys in every record: the values as JSON arrays, plus the keys' share,
        # which is the same for every record (a third less to serialize).
        keys_share = len(pydantic_core.to_json(records[0], fallback=str)) - len(
            pydantic_core.to_json(uniform[0], fallback=str)
        )
        size = len(pydantic_core.to_json(uniform, fallback=str)) + keys_share * len(records)
    else:
        size = len(pydantic_core.to_json(records, fallback=str))
    if size > max_bytes:
        raise InvalidArgument(
            f"the records are {size} bytes as JSON; the limit is {max_bytes}",
            "split the rows into several smaller calls",
        )


def _refuse_denied(info: TableInfo, column: ColumnInfo, denied: set[str], hint: str) -> None:
    if column.name.lower() in denied:
        raise PolicyViolation(
            f"column {info.name}.{column.name} may not be written through sqlgate", hint, code="COLUMN_NOT_ALLOWED"
        )


def _denied_columns(db: Database, info: TableInfo) -> set[str]:
    names = {info.name.lower()}
    if info.schema:
        names.add(f"{info.schema}.{info.name}".lower())
    denied = set()
    for entry in db.policy.denied_columns:
        owner, dot, column = entry.lower().rpartition(".")
        if dot and owner in names:
            denied.add(column)
    return denied


def _column_mapper(db: Database, info: TableInfo, records: list[dict[str, Any]]) -> dict[tuple[str, ...], Any]:
    """Each distinct key set → (reflected columns in table order, the record keys in that
    order, a getter giving a record's values in that order). Unknown and denied columns
    are refused here, before anything is written."""
    denied = _denied_columns(db, info)
    order = {c.name: i for i, c in enumerate(info.columns)}
    mapped: dict[tuple[str, ...], Any] = {}
    # Distinct key sets in first-seen order, collected in C (one pass over the records).
    for keyset in dict.fromkeys(map(tuple, records)):
        if not keyset:
            raise InvalidArgument(f"record {_first(records, keyset)} is empty", "give every record at least one column")
        resolved: list[tuple[str, str]] = []
        for key in keyset:
            column = info.column(key)
            if column is None:
                raise InvalidArgument(
                    f"record {_first(records, keyset)}: {key!r} is not a column of {info.name}",
                    f"the columns are: {', '.join(info.column_names)}",
                )
            _refuse_denied(info, column, denied, "leave it out of the records")
            resolved.append((column.name, key))
        if len({c for c, _ in resolved}) != len(resolved):
            raise InvalidArgument(
                f"record {_first(records, keyset)} names a column twice", "give each column once"
            )
        resolved.sort(key=lambda pair: order[pair[0]])
        columns = tuple(c for c, _ in resolved)
        source = tuple(k for _, k in resolved)
        getter = operator.itemgetter(*source) if len(source) > 1 else _one(source[0])
        mapped[keyset] = (columns, source, getter)
    return mapped


def _uniform_rows(records: list[dict[str, Any]]) -> list[tuple[Any, ...]] | None:
    """Every record's values in the first record's key order, if all have the same keys.

    Equal sizes plus every record holding each of the first record's keys means equal key
    sets; both checks run in C, so the common case costs no Python loop per record.
    """
    size = len(records[0])
    if size == 0 or set(map(len, records)) != {size}:
        return None
    getter = operator.itemgetter(*records[0]) if size > 1 else _one(next(iter(records[0])))
    try:
        return list(map(getter, records))
    except KeyError:
        return None


def _first(records: list[dict[str, Any]], keyset: tuple[str, ...]) -> int:
    """Index of the first record with these keys (for error messages only)."""
    return next(i for i, item in enumerate(records) if tuple(item) == keyset)


def _one(key: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    return lambda item: (item[key],)


def _common_columns(columns_of: dict[Any, Any]) -> set[str]:
    sets = [set(columns) for columns, _, _ in columns_of.values()]
    return set.intersection(*sets) if sets else set()


def _conflict_columns(
    info: TableInfo, columns_of: dict[Any, Any], on_conflict: str, given: list[str] | None
) -> tuple[str, ...]:
    candidates = [tuple(info.primary_key)] if info.primary_key else []
    candidates += [tuple(u) for u in info.unique_constraints]
    candidates += [tuple(i.columns) for i in info.indexes if i.unique and tuple(i.columns) not in candidates]
    described = "; ".join("(" + ", ".join(c) + ")" for c in candidates) or "none"
    if given:
        resolved = []
        for name in given:
            column = info.column(name)
            if column is None:
                raise InvalidArgument(
                    f"conflict column {name!r} is not a column of {info.name}",
                    f"the columns are: {', '.join(info.column_names)}",
                )
            resolved.append(column.name)
        if not any(set(resolved) == set(c) for c in candidates):
            raise InvalidArgument(
                f"({', '.join(resolved)}) is not the primary key or a unique constraint of {info.name}",
                f"keys of {info.name}: {described}",
            )
        return tuple(resolved)
    if on_conflict == "error":
        return ()
    present = _common_columns(columns_of)
    for candidate in candidates:
        if candidate and set(candidate) <= present:
            return candidate
    raise InvalidArgument(
        f"on_conflict={on_conflict} needs a key, and no primary key or unique constraint of "
        f"{info.name} is present in every record",
        f"include a key's columns in every record, or pass conflict_columns; keys: {described}",
    )


def _update_columns(
    db: Database,
    info: TableInfo,
    columns_of: dict[Any, Any],
    keys: tuple[str, ...],
    on_conflict: str,
    given: list[str] | None,
) -> tuple[str, ...]:
    if on_conflict != "update":
        return ()
    inserted = set().union(*(set(columns) for columns, _, _ in columns_of.values()))
    if given is None:
        return tuple(c.name for c in info.columns if c.name in inserted and c.name not in keys)
    denied = _denied_columns(db, info)
    resolved = []
    for name in given:
        column = info.column(name)
        if column is None or column.name not in inserted:
            raise InvalidArgument(
                f"update column {name!r} is not one of the inserted columns",
                f"inserted columns: {', '.join(sorted(inserted))}",
            )
        _refuse_denied(info, column, denied, "leave it out of update_columns")
        resolved.append(column.name)
    return tuple(resolved)


async def _run(
    ctx: Context[Any],
    db: Database,
    batches: list[list[tuple[bulk.InsertPlan, list[tuple[Any, ...]]]]],
    batch_size: int,
    total: int,
    atomic: bool,
) -> tuple[bulk.Counts, int, list[FailedBatch]]:
    counts = bulk.Counts()
    timeout_ms = db.policy.statement_timeout_ms
    # The dialect's choice (SQLite: take the write lock at BEGIN IMMEDIATE, so concurrent
    # writers wait for each other instead of failing when a read lock cannot be upgraded).
    isolation = db.driver.bulk_isolation
    done = 0
    tx: GuardedTransaction | None = None

    async def sent(number: int, rows: int) -> None:
        nonlocal done
        done += rows
        await ctx.report_progress(done, total, f"batch {number}/{len(batches)}")

    try:
        single_shape = all(len(batch) == 1 and batch[0][0] is batches[0][0][0] for batch in batches)
        if atomic and single_shape:
            # PostgreSQL: every batch through one streamed COPY (see bulk.copy_stream).
            tx = await GuardedTransaction(db, read_only=False, isolation=isolation).start()
            try:
                streamed = await bulk.copy_stream(
                    batches[0][0][0], tx.connection, [batch[0][1] for batch in batches], sent, timeout_ms
                )
            except bulk.StreamFailed as failure:
                await tx.rollback()
                number = failure.record // batch_size + 1 if failure.record is not None else None
                raise _atomic_failure(failure.error, number, len(batches), batch_size, total) from failure
            if streamed is not None:
                done_tx, tx = tx, None
                await _commit(db, done_tx, {})
                return streamed, len(batches), []
        for number, batch in enumerate(batches, start=1):
            if tx is None:
                tx = await GuardedTransaction(db, read_only=False, isolation=isolation).start()
            batch_counts = bulk.Counts()
            try:
                for plan, rows in batch:
                    batch_counts.add(await bulk.insert_rows(plan, tx.connection, rows, timeout_ms))
                if not atomic:
                    done_tx, tx = tx, None
                    first = (number - 1) * batch_size
                    await _commit(db, done_tx, {
                        "committed_batches": number - 1, "uncertain_batch": number,
                        "first_record": first, "last_record": min(first + batch_size, total) - 1,
                    })
            except SqlgateError as error:
                if isinstance(error, OperationFailed) and "commit_outcome" in error.details:
                    raise
                if tx is not None:
                    await tx.rollback()
                tx = None
                if atomic:
                    raise _atomic_failure(error, number, len(batches), batch_size, total) from error
                first = (number - 1) * batch_size
                failed = FailedBatch(
                    batch=number, first_record=first, last_record=min(first + batch_size, total) - 1,
                    code=error.code, message=error.message,
                )
                return counts, number - 1, [failed]
            counts.add(batch_counts)
            await sent(number, sum(len(rows) for _, rows in batch))
        if tx is not None:
            done_tx, tx = tx, None
            await _commit(db, done_tx, {})
    finally:
        if tx is not None:  # cancelled, or an unexpected error: never half-commit
            await tx.rollback()
    return counts, len(batches), []


async def _commit(db: Database, tx: GuardedTransaction, details: dict[str, Any]) -> None:
    """Commit ``tx``; a COMMIT the database did not answer may have taken effect, and the
    agent is told so (never "nothing was written", which invites writing it all twice)."""
    try:
        await tx.commit()
    except SqlgateError as error:
        raise failed_commit(db, error, "the transaction was rolled back, nothing of it was written",
                            details) from error


def _atomic_failure(
    error: SqlgateError, number: int | None, batches: int, batch_size: int, total: int
) -> OperationFailed:
    if number is None:
        return OperationFailed(
            error, f"the insert failed: {error.message}; the transaction was rolled back, nothing was written",
            {"committed": False},
        )
    first = (number - 1) * batch_size
    last = min(first + batch_size, total) - 1
    return OperationFailed(
        error,
        f"batch {number} of {batches} (records {first}-{last}) failed: {error.message}; "
        "the transaction was rolled back, nothing was written",
        {"failed_batch": number, "first_record": first, "last_record": last, "committed": False},
    )


def register(server: Any, all_read_only: bool) -> None:
    server.add_tool(
        bulk_insert,
        name="bulk_insert",
        description=DESCRIPTION,
        annotations=ToolAnnotations(
            title="Insert many rows",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        ),
        structured_output=True,
    )
