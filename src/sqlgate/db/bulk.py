"""bulk_insert's statement builder and the dialect-neutral driving of each dialect's fast path.

The INSERT is built by sqlgate from reflected identifiers (quoted by sqlglot), with the
dialect's conflict clause (``Dialect.add_conflict_clause``: ``ON CONFLICT``, ``INSERT
IGNORE``, ``ON DUPLICATE KEY UPDATE``), checked by ``safety.check`` like any agent SQL,
and then run the fastest way each driver offers for many rows of the same shape
(``Dialect.insert_rows``: COPY, multi-row ``VALUES``, ``executemany``; and
``Dialect.stream_insert`` for one streamed statement over every batch where the driver
has one).

The multi-row forms repeat the checked statement's ``VALUES`` tuple of placeholders and
nothing else, the same rewrite drivers do for ``executemany``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from sqlgate import safety
from sqlgate.db.dialects import Counts, bind
from sqlgate.errors import SqlgateError

if TYPE_CHECKING:
    from sqlgate.db.engines import Database
    from sqlgate.db.schema import TableInfo
    from sqlgate.safety.verdict import Verdict

ON_CONFLICT = ("error", "ignore", "update")

__all__ = ["ON_CONFLICT", "Counts", "InsertPlan", "StreamFailed", "build_insert", "copy_stream", "insert_rows"]


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

    def row_template(self, marker: Callable[[int], str]) -> tuple[str, str]:
        """(prefix, suffix) around the checked statement's one VALUES tuple, with markers."""
        return _template(self, marker)

    def insert_only(self) -> InsertPlan:
        """The same INSERT with ``on_conflict=ignore``, checked by safety.check too."""
        return build_insert(self.database, self.table, self.columns, "ignore", self.conflict_columns, ())


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
    database.driver.add_conflict_clause(statement, on_conflict, conflict_columns, update_columns)
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


async def insert_rows(plan: InsertPlan, conn: Any, rows: list[tuple[Any, ...]], timeout_ms: int) -> Counts:
    """Insert ``rows`` (tuples in ``plan.columns`` order) on the transaction's connection."""
    try:
        return await plan.database.driver.insert_rows(plan, conn, rows, timeout_ms / 1000 + 2)
    except SqlgateError:
        raise
    except Exception as exc:  # driver errors; cancellation propagates untouched
        raise plan.database.map_error(exc, timeout_ms) from exc


class StreamFailed(Exception):
    """A streamed COPY failed; ``record`` is the index of the failing row when known."""

    def __init__(self, error: SqlgateError, record: int | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.record = record


async def copy_stream(
    plan: InsertPlan,
    conn: Any,
    batches: list[list[tuple[Any, ...]]],
    on_batch: Callable[[int, int], Awaitable[None]],
    timeout_ms: int,
) -> Counts | None:
    """One transaction, every batch in ONE statement where the dialect can (PostgreSQL COPY).

    ``on_batch(number, rows)`` runs as each batch is sent. None when the dialect has no
    such path for this plan (then run the batches one by one).
    """
    driver = plan.database.driver
    try:
        return await driver.stream_insert(plan, conn, batches, on_batch, timeout_ms)
    except SqlgateError as error:
        raise StreamFailed(error, None) from error
    except Exception as exc:  # driver errors; cancellation propagates untouched
        raise StreamFailed(plan.database.map_error(exc, timeout_ms), driver.failed_record(exc)) from exc
