"""bulk_insert's statement builder and the per-driver fast paths that run it.

The INSERT is built by sqlgate from reflected identifiers (quoted by sqlglot), checked by
``safety.check`` like any agent SQL, and then run the fastest way each driver offers for
many rows of the same shape:

* PostgreSQL: ``COPY`` (asyncpg ``copy_records_to_table``) for ``on_conflict=error``, in
  the surrounding transaction, so still all-or-nothing; multi-row ``VALUES … ON CONFLICT
  … RETURNING (xmax = 0)`` otherwise, which also tells inserted from updated rows.
* MySQL/MariaDB: multi-row ``VALUES`` with the driver's own escaping (what pymysql's
  ``executemany`` does), ``INSERT IGNORE`` / ``ON DUPLICATE KEY UPDATE``; counts from the
  server's ``Records: N  Duplicates: D`` info and the affected-rows count.
* SQLite: ``executemany`` with ``ON CONFLICT``; counts from ``total_changes``.

The multi-row forms repeat the checked statement's ``VALUES`` tuple of placeholders and
nothing else, the same rewrite drivers do for ``executemany``.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from sqlgate import safety
from sqlgate.db.dialects import bind, mysql_literal, pg_param, sqlite_deadline
from sqlgate.errors import DatabaseError, SqlgateError

if TYPE_CHECKING:
    from sqlgate.db.engines import Database
    from sqlgate.db.schema import TableInfo
    from sqlgate.safety.verdict import Verdict

ON_CONFLICT = ("error", "ignore", "update")
_PG_MAX_PARAMS = 32_767
_MYSQL_MAX_STATEMENT = 1_000_000  # bytes per statement, below the default max_allowed_packet
_MYSQL_INFO = re.compile(rb"Records:\s*(\d+)\s+Duplicates:\s*(\d+)")


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    skipped: int = 0

    def add(self, other: Counts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.skipped += other.skipped


@dataclass
class InsertPlan:
    """One column set of one call: the checked statement and how to run it."""

    database: Database
    table: TableInfo
    columns: tuple[str, ...]
    on_conflict: str
    conflict_columns: tuple[str, ...]
    update_columns: tuple[str, ...]
    verdict: Verdict
    templates: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def upsert(self) -> bool:
        return self.on_conflict == "update" and bool(self.update_columns)


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def build_insert(
    database: Database,
    table: TableInfo,
    columns: Sequence[str],
    on_conflict: str,
    conflict_columns: Sequence[str],
    update_columns: Sequence[str],
) -> InsertPlan:
    """The single-row INSERT for ``columns`` (reflected names), checked by safety.check."""
    dialect = database.dialect
    target = exp.Table(this=_ident(table.name), db=_ident(table.schema) if table.schema else None)
    row = exp.Tuple(expressions=[exp.Placeholder(this=f"p{i}") for i in range(len(columns))])
    statement = exp.Insert(
        this=exp.Schema(this=target, expressions=[_ident(c) for c in columns]),
        expression=exp.Values(expressions=[row]),
    )
    upsert = on_conflict == "update" and bool(update_columns)
    if dialect == "mysql":
        if on_conflict == "ignore" or (on_conflict == "update" and not upsert):
            statement.set("ignore", True)
        elif upsert:
            # VALUES(col) is the row that was refused: MariaDB and MySQL both accept it.
            sets = [
                exp.EQ(this=exp.column(_ident(c)), expression=exp.Anonymous(this="VALUES", expressions=[_ident(c)]))
                for c in update_columns
            ]
            statement.set("conflict", exp.OnConflict(duplicate=True, expressions=sets, action=exp.var("UPDATE")))
    elif on_conflict != "error":
        keys = [_ident(c) for c in conflict_columns]
        if upsert:
            sets = [
                exp.EQ(this=exp.column(_ident(c)), expression=exp.column(_ident(c), table=_ident("excluded")))
                for c in update_columns
            ]
            conflict = exp.OnConflict(conflict_keys=keys, action=exp.var("DO UPDATE"), expressions=sets)
        else:
            conflict = exp.OnConflict(conflict_keys=keys, action=exp.var("DO NOTHING"))
        statement.set("conflict", conflict)
        if dialect == "postgres":
            # xmax is 0 for a row this statement inserted, the updater's id for one it updated.
            flag = exp.alias_(exp.EQ(this=exp.column("xmax"), expression=exp.Literal.number(0)), "inserted")
            statement.set("returning", exp.Returning(expressions=[flag]))
    sql = statement.sql(dialect=dialect, comments=False)
    verdict = safety.check(sql, dialect, database.policy)
    return InsertPlan(
        database, table, tuple(columns), on_conflict, tuple(conflict_columns), tuple(update_columns), verdict
    )


def _template(plan: InsertPlan, marker: Callable[[int], str]) -> tuple[str, str]:
    """(prefix, suffix) around the checked statement's one VALUES tuple, with markers."""
    cache_key = marker(0)
    if cache_key in plan.templates:
        return plan.templates[cache_key]
    statement = plan.verdict.expressions[0]
    n = len(plan.columns)
    names = {f"p{i}": i for i in range(n)}
    sql = bind(statement, plan.database.dialect, dict.fromkeys(names), lambda name: marker(names[name]))
    row = "(" + ", ".join(marker(i) for i in range(n)) + ")"
    prefix, found, suffix = sql.partition(row)
    if not found or row in suffix:
        raise SqlgateError("sqlgate could not prepare the bulk INSERT", "report this with the table's definition")
    plan.templates[cache_key] = (prefix, suffix)
    return prefix, suffix


# --------------------------------------------------------------------- PostgreSQL


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
    "timestamp": dt.datetime.fromisoformat,
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


async def _pg_types(plan: InsertPlan, conn: Any) -> list[str]:
    cached = plan.database.info.setdefault("bulk_pg_types", {})
    key = (plan.table.schema, plan.table.name, plan.columns)
    types = cached.get(key)
    if types is None:
        prefix, suffix = _template(plan, lambda i: f"${i + 1}")
        row = "(" + ", ".join(f"${i + 1}" for i in range(len(plan.columns))) + ")"
        prepared = await conn.prepare(prefix + row + suffix)
        types = cached[key] = [t.name for t in prepared.get_parameters()]
    return list(types)


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
    kinds = set(map(type, itertools.chain.from_iterable(rows)))
    if not kinds <= _CSV_SAFE:
        return None
    if float in kinds and any(t in ("int2", "int4", "int8") for t in types):
        return None  # 12.0 for an integer: converted in Python, PostgreSQL's text input refuses it
    return kinds


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


async def _pg_insert(plan: InsertPlan, conn: Any, rows: list[tuple[Any, ...]], timeout_s: float) -> Counts:
    types = await _pg_types(plan, conn)
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
    prefix, suffix = _template(plan, lambda i: f"${i + 1}")
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


# ----------------------------------------------------------------- MySQL / MariaDB


async def _mysql_insert(plan: InsertPlan, conn: Any, rows: list[tuple[Any, ...]], timeout_s: float) -> Counts:
    import asyncio

    from pymysql.constants import CLIENT

    prefix, suffix = _template(plan, lambda i: "%s")
    found_rows = bool(getattr(conn, "client_flag", 0) & CLIENT.FOUND_ROWS)
    counts = Counts()
    cur = await conn.cursor()
    try:
        batch: list[str] = []
        size = len(prefix) + len(suffix)
        for index, row in enumerate(rows):
            text = "(" + ",".join(mysql_literal(conn, v) for v in row) + ")"
            batch.append(text)
            size += len(text) + 1
            if size >= _MYSQL_MAX_STATEMENT or index == len(rows) - 1:
                await asyncio.wait_for(cur.execute(prefix + ",".join(batch) + suffix), timeout=timeout_s)
                done = _mysql_counts(plan, len(batch), cur, found_rows)
                if not plan.upsert and plan.on_conflict != "error":
                    await _mysql_check_ignore(cur, done.skipped)
                counts.add(done)
                batch, size = [], len(prefix) + len(suffix)
    finally:
        await cur.close()
    return counts


async def _mysql_check_ignore(cur: Any, skipped: int) -> None:
    """INSERT IGNORE also turns errors into warnings (a NULL into NOT NULL, a value too
    long, a bad date...) and stores something else. sqlgate ignores duplicate keys only:
    each skipped row leaves one warning; any more and the statement changed data."""
    warnings = getattr(getattr(cur, "_result", None), "warning_count", 0) or 0
    if warnings <= skipped:
        return
    await cur.execute("SHOW WARNINGS")
    found = await cur.fetchall()
    other = [str(w[2]) for w in found if len(w) > 2 and w[1] != 1062]
    raise DatabaseError(
        "the database would have stored changed values under INSERT IGNORE: "
        + ("; ".join(other[:3]) or f"{warnings - skipped} warning(s) besides duplicate keys"),
        "fix the records (lengths, NOT NULL columns, value types); nothing of this call was kept",
    )


def _mysql_counts(plan: InsertPlan, sent: int, cur: Any, found_rows: bool) -> Counts:
    affected = max(cur.rowcount or 0, 0)
    if plan.on_conflict == "error":
        return Counts(inserted=affected)
    if not plan.upsert:  # INSERT IGNORE: one affected row per inserted row
        return Counts(inserted=affected, skipped=sent - affected)
    message = getattr(getattr(cur, "_result", None), "message", b"") or b""
    info = _MYSQL_INFO.search(message)
    if info:
        duplicates = int(info.group(2))
        return Counts(inserted=sent - duplicates, updated=duplicates)
    # One row: no info message. 2 = updated, 1 = inserted (or, with the FOUND_ROWS flag
    # SQLAlchemy sets, found with equal values: reported as inserted; see README).
    if affected == 2 or (affected == 0 and not found_rows):
        return Counts(updated=sent)
    return Counts(inserted=sent)


# ------------------------------------------------------------------------- SQLite


async def _sqlite_insert(plan: InsertPlan, conn: Any, rows: list[tuple[Any, ...]], timeout_s: float) -> Counts:
    prefix, suffix = _template(plan, lambda i: "?")
    sql = prefix + "(" + ", ".join("?" * len(plan.columns)) + ")" + suffix
    nested = {dict, list} & set(map(type, itertools.chain.from_iterable(rows)))
    args = [tuple(_sqlite_value(v) for v in row) for row in rows] if nested else rows
    sqlite_deadline(conn).arm(int((timeout_s - 2) * 1000))  # per batch, not per transaction
    before = conn.total_changes
    if not plan.upsert:
        await conn.executemany(sql, args)
        inserted = conn.total_changes - before
        return Counts(inserted=inserted, skipped=len(args) - inserted)
    # An upsert counts one change whether it inserted or updated. First insert what is
    # new (DO NOTHING); every record refused then is exactly one that updates, so
    # apply the upsert to all records in order (rows just inserted get equal values).
    insert_only = _sqlite_do_nothing(plan, sql)
    await conn.executemany(insert_only, args)
    inserted = conn.total_changes - before
    if inserted < len(args):
        await conn.executemany(sql, args)
    return Counts(inserted=inserted, updated=len(args) - inserted)


def _sqlite_do_nothing(plan: InsertPlan, upsert_sql: str) -> str:
    cached = plan.database.info.setdefault("bulk_sqlite_nothing", {})
    if upsert_sql not in cached:
        nothing = build_insert(plan.database, plan.table, plan.columns, "ignore", plan.conflict_columns, ())
        prefix, suffix = _template(nothing, lambda i: "?")
        cached[upsert_sql] = prefix + "(" + ", ".join("?" * len(plan.columns)) + ")" + suffix
    return str(cached[upsert_sql])


def _sqlite_value(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else value


_RUNNERS = {"postgresql": _pg_insert, "mysql": _mysql_insert, "sqlite": _sqlite_insert}


async def insert_rows(plan: InsertPlan, conn: Any, rows: list[tuple[Any, ...]], timeout_ms: int) -> Counts:
    """Insert ``rows`` (tuples in ``plan.columns`` order) on the transaction's connection."""
    runner = _RUNNERS[plan.database.driver.name]
    try:
        return await runner(plan, conn, rows, timeout_ms / 1000 + 2)
    except SqlgateError:
        raise
    except Exception as exc:  # driver errors; cancellation propagates untouched
        raise plan.database.driver.map_error(exc, timeout_ms) from exc


class StreamFailed(Exception):
    """A streamed COPY failed; ``record`` is the index of the failing row when known."""

    def __init__(self, error: SqlgateError, record: int | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.record = record


_COPY_LINE = re.compile(r"\bline (\d+)")


async def copy_stream(
    plan: InsertPlan,
    conn: Any,
    batches: list[list[tuple[Any, ...]]],
    on_batch: Callable[[int, int], Awaitable[None]],
    timeout_ms: int,
) -> Counts | None:
    """PostgreSQL, on_conflict=error, one transaction: every batch in ONE text COPY.

    The server parses batch k while sqlgate encodes batch k+1 (one statement instead of a
    round trip per batch); ``on_batch(number, rows)`` runs as each batch is sent. None when
    some value needs converting in Python first (then run the batches one by one).
    """
    if plan.database.driver.name != "postgresql" or plan.on_conflict != "error":
        return None
    types = await _pg_types(plan, conn)
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

    try:
        status = await conn.copy_to_table(
            plan.table.name, source=source(), columns=list(plan.columns),
            schema_name=plan.table.schema, format="csv", timeout=timeout_ms / 1000 + 2,
        )
    except SqlgateError as error:
        raise StreamFailed(error, None) from error
    except Exception as exc:  # driver errors; cancellation propagates untouched
        # PostgreSQL names the COPY input line (1-based) in the error's context.
        found = _COPY_LINE.search(str(getattr(exc, "context", "") or ""))
        record = int(found.group(1)) - 1 if found else None
        raise StreamFailed(plan.database.driver.map_error(exc, timeout_ms), record) from exc
    copied = status.rsplit(" ", 1)[-1]
    return Counts(inserted=int(copied) if copied.isdigit() else sum(len(b) for b in batches))
