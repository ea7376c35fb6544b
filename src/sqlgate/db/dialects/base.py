"""The ``Dialect`` protocol: everything that differs between the database families.

sqlgate checks connections out of SQLAlchemy's pools but runs statements on the driver
connection itself: it controls the transaction, the read-only flag and the timeout
exactly, and skips a layer of per-row work. One ``Dialect`` subclass per family
(``postgres.py``, ``mysql.py``, ``sqlite.py``) knows that family's way of:

* the async driver for its URL schemes, connect arguments and pool rules;
* session defaults set once per new connection (read-only, statement timeout);
* starting a transaction (read-only, isolation level, a per-call timeout), commit, rollback;
* binding parameters (the validated AST is rendered with the driver's markers) and
  coercing JSON values to what the driver wants;
* running a statement and fetching at most N rows;
* turning the driver's exceptions into sqlgate errors;
* the server facts, row estimates and reflection quirks sqlgate reads from the catalog;
* the health write round trip and the bulk-insert strategy (COPY, multi-row INSERT,
  executemany; the upsert syntax).

Code outside ``db/dialects/`` calls these methods and never branches on a dialect name;
the registry (``__init__.py``) finds the class by canonical name or URL scheme.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sqlglot import exp

from sqlgate.db.dialects.plans import (  # query_optimization hooks
    UNVERIFIED_NO_WHAT_IF,
    IndexSyntax,
    RawPlan,
    WhatIfPlan,
)
from sqlgate.errors import (
    ConstraintViolation,
    DatabaseBusy,
    DatabaseError,
    DatabaseUnavailable,
    InvalidArgument,
    PolicyViolation,
    QueryTimeout,
    SqlgateError,
    TransactionConflict,
)
from sqlgate.logging import mask_secrets
from sqlgate.safety import render

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from sqlgate.db.dialects.grants import GrantPlan
    from sqlgate.db.dialects.tls import TlsStatus
    from sqlgate.db.results import RowBudget

ISOLATION_LEVELS = ("read_committed", "repeatable_read", "serializable", "read_uncommitted")


@dataclass
class RawResult:
    columns: list[str]
    rows: list[Any]  # the rows the fetch kept (converted by the RowBudget when it had one)
    rows_affected: int | None
    more: bool  # the database had more rows than were fetched
    # Rows were left unread and the statement may still hold the connection: the
    # boundary stops it in the database and discards the connection.
    unread: bool = False


@dataclass
class Counts:
    """What one bulk INSERT did."""

    inserted: int = 0
    updated: int = 0
    skipped: int = 0

    def add(self, other: Counts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.skipped += other.skipped


class BulkTable(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def schema(self) -> str | None: ...


class BulkPlan(Protocol):
    """What a dialect's bulk-insert strategy reads from ``db.bulk.InsertPlan``."""

    @property
    def table(self) -> BulkTable: ...

    @property
    def columns(self) -> tuple[str, ...]: ...

    @property
    def on_conflict(self) -> str: ...

    @property
    def conflict_columns(self) -> tuple[str, ...]: ...

    @property
    def upsert(self) -> bool: ...

    def row_template(self, marker: Callable[[int], str]) -> tuple[str, str]:
        """(prefix, suffix) around the checked statement's one VALUES tuple."""
        ...

    def insert_only(self) -> BulkPlan:
        """The same INSERT with ``on_conflict=ignore`` (checked by safety.check too)."""
        ...


# --------------------------------------------------------------- parameter binding

# Rendered SQL templates by statement id, then sqlglot dialect. The entry holds the
# statement itself, so its id cannot be reused while it is cached (the verdict LRU in
# safety keeps the hot statements alive anyway). Oldest entries go first past the bound:
# no bookkeeping on a hit. The db layer never writes into the verdict's tree.
_TEMPLATES: dict[int, tuple[exp.Expr, dict[str, list[str]]]] = {}
TEMPLATE_CACHE_SIZE = 4096


def bind(statement: exp.Expr, dialect: str, params: dict[str, Any], marker: Callable[[str], str]) -> str:
    """Render ``statement`` with each named placeholder replaced by ``marker(name)``.

    The SQL text is generated once per (statement, dialect) as a template whose
    placeholders are NUL-delimited names (NUL never survives ``safety.check``), then
    filled in per call: no tree copy or SQL generation on the hot path.
    """
    parts = template(statement, dialect)
    if len(parts) == 1:
        return parts[0]
    missing = sorted({parts[i] for i in range(1, len(parts), 2) if parts[i] not in params})
    if missing:
        raise InvalidArgument(
            f"missing parameter(s): {', '.join(missing)}",
            "pass a value for every :name placeholder in `parameters`",
        )
    out = []
    for i, part in enumerate(parts):
        out.append(marker(part) if i % 2 else part)
    return "".join(out)


def template(statement: exp.Expr, dialect: str) -> list[str]:
    """The statement's SQL split on its placeholders: text, name, text, name, ..., text."""
    sent = render.sent_parts(statement, dialect)  # the checked text, as safety.check wrote it
    if sent is not None:
        return sent
    entry = _TEMPLATES.get(id(statement))
    if entry is not None and entry[0] is statement:
        parts = entry[1].get(dialect)
        if parts is not None:
            return parts
    else:
        if len(_TEMPLATES) >= TEMPLATE_CACHE_SIZE:
            del _TEMPLATES[next(iter(_TEMPLATES))]
        entry = _TEMPLATES[id(statement)] = (statement, {})

    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder):
            return exp.Var(this=f"\x00{node.name}\x00")
        if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Literal) and str(node.this.this).isdigit():
            return exp.Var(this=f"\x00{int(node.this.this)}\x00")  # PostgreSQL $n
        return node

    rendered = statement.transform(replace, copy=True)
    parts = rendered.sql(dialect=dialect, comments=False, normalize_functions=False).split("\x00")
    entry[1][dialect] = parts
    return parts


# ------------------------------------------------------------------ shared errors


def db_error(exc: BaseException | str, sqlstate: str | None = None) -> DatabaseError:
    message = mask_secrets(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    detail = f" (SQLSTATE {sqlstate})" if sqlstate else ""
    return DatabaseError(
        f"the database rejected the statement: {message}{detail}",
        "fix the SQL using the database's message; describe the tables to check names and types",
    )


def unreadable_value(exc: BaseException, hint: str) -> DatabaseError:
    """The statement ran, but the driver cannot turn a value of its result into Python."""
    message = mask_secrets(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    return DatabaseError(f"a value in the result cannot be read: {message}", hint)


def db_write_refused(message: str) -> PolicyViolation:
    return PolicyViolation(
        f"the database refused a write in a read-only transaction: {message}",
        "this database is read-only through sqlgate; only queries are allowed",
        code="WRITE_NOT_ALLOWED",
    )


def unavailable(message: str) -> DatabaseUnavailable:
    """Connection lost, server shutting down, backend terminated: retry the call."""
    return DatabaseUnavailable(
        mask_secrets(message.strip().splitlines()[0] if message.strip() else message),
        "retry the call (the connection was lost, not the SQL's fault); if it keeps failing, run health_check",
    )


def busy(message: str) -> DatabaseBusy:
    """A lock wait timed out / the database is locked by another writer."""
    return DatabaseBusy(
        f"the database could not get a lock in time: {mask_secrets(message)}",
        "another transaction holds the lock; retry the call shortly (keep transactions short)",
    )


def conflict(message: str) -> TransactionConflict:
    """Deadlock or serialization failure: the database rolled the transaction back."""
    return TransactionConflict(
        f"the transaction conflicted with another one and was rolled back: {mask_secrets(message)}",
        "retry the whole transaction (every operation, from the start); nothing was committed",
    )


def constraint_violation(message: str, code: str | None = None) -> ConstraintViolation:
    detail = f" ({code})" if code else ""
    return ConstraintViolation(
        f"the data violates a constraint: {mask_secrets(message)}{detail}",
        "change the values (duplicate key, missing referenced row, NULL in a NOT NULL column, "
        "failed CHECK); retrying the same values fails again",
    )


def timeout_error(timeout_ms: int) -> QueryTimeout:
    return QueryTimeout(
        f"the statement ran longer than {timeout_ms} ms and was cancelled",
        "make the query cheaper (filter earlier, add LIMIT, aggregate less) or pass a "
        "larger timeout_seconds if the policy allows it",
    )


def on_conflict_clause(
    on_conflict: str, conflict_columns: Sequence[str], update_columns: Sequence[str]
) -> exp.OnConflict | None:
    """Standard ``ON CONFLICT (keys) DO NOTHING | DO UPDATE SET col = excluded.col``."""
    if on_conflict == "error":
        return None
    keys = [quoted(c) for c in conflict_columns]
    if on_conflict == "update" and update_columns:
        sets = [
            exp.EQ(this=exp.column(quoted(c)), expression=exp.column(quoted(c), table=quoted("excluded")))
            for c in update_columns
        ]
        return exp.OnConflict(conflict_keys=keys, action=exp.var("DO UPDATE"), expressions=sets)
    return exp.OnConflict(conflict_keys=keys, action=exp.var("DO NOTHING"))


def quoted(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


# ------------------------------------------------------------------ the protocol


class Dialect(ABC):
    """One database family. Instances are per configured database (caches live here)."""

    # --- identity and connecting
    name: ClassVar[str]  # canonical: what every output says (postgresql, mysql, sqlite)
    sqlglot_dialect: ClassVar[str]  # the parser's name: an internal detail of parsing/rendering
    # URL schemes are the safety profile's (safety/profiles/<name>.py: pure, read by settings).
    async_driver: ClassVar[str]  # the SQLAlchemy async drivername every scheme maps to
    pool_pre_ping: ClassVar[bool] = True  # a connection to a network server can die in the pool
    # A lone read may run without an explicit transaction: the session defaults set
    # at connect make it read-only and time-limited.
    autocommit_reads: ClassVar[bool] = True
    # --- transactions
    isolation_levels: ClassVar[tuple[str, ...]] = ISOLATION_LEVELS
    bulk_isolation: ClassVar[str | None] = None  # bulk_insert's transactions
    # --- catalog
    # One row: (version text, default schema[, whether table names compare exactly]).
    facts_sql: ClassVar[str]
    row_estimate_sql: ClassVar[str | None] = None  # bound :schema, :name; one number or NULL
    row_count_source: ClassVar[str] = "exact count(*)"

    # Seconds after which the database itself ends a session left idle inside a transaction
    # (set per database by db.engines; None: not set). A backstop for a sqlgate host that
    # vanished without closing its sockets (a crash during a network partition): the
    # backend would otherwise hold its locks until TCP keepalive gives up, hours later.
    idle_in_transaction_s: int | None = None

    def engine_kwargs(self, read_only: bool, timeout_ms: int) -> dict[str, Any]:
        """Connect arguments (session defaults sent at connect), for every engine of this database."""
        return {}

    def engine_url(self, url: URL, read_only: bool) -> URL:
        """The URL the engine opens (SQLite: a read-only file is opened ``mode=ro``)."""
        return url

    def storage_problem(self, url: URL, read_only: bool) -> str | None:
        """Why the database cannot do what its mode promises, seen without a statement
        (SQLite: read_write on a read-only file); health_check reports it (degraded)."""
        return None

    def pool_kwargs(
        self, url: URL, *, pool_size: int, max_overflow: int, pool_timeout_s: float, pool_recycle_s: float
    ) -> dict[str, Any]:
        """The pool: pre-ping, recycling and sizing."""
        return {
            "pool_pre_ping": self.pool_pre_ping,
            "pool_recycle": pool_recycle_s,
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_timeout": pool_timeout_s,
        }

    # Connecting through URLs as providers show them (issue 14): TLS, poolers, timeouts.
    connect_timeout_arg: ClassVar[str | None] = None  # the driver's connect-timeout keyword
    # The URL may carry prepared_statements=true|false (transaction poolers: PostgreSQL).
    prepared_statements_option: ClassVar[bool] = False

    def configured(self, url: URL) -> Dialect:
        """This dialect as the URL's options ask (PostgreSQL behind a transaction pooler)."""
        return self

    def validate_url(self, url: URL) -> None:
        """Raise ``ConfigError`` (one line, with the fix) for a URL this dialect cannot use."""
        return None

    def tls_status(self, conn: Any) -> TlsStatus | None:
        """Whether the driver connection ``conn`` is encrypted (None: not a network database)."""
        return None

    def private_memory(self, url: URL) -> bool:
        """True when every connection would see its own database (in-memory SQLite):
        probes must then use the pool's engine, not a fresh one."""
        return False

    def local_file(self, url: URL) -> Path | None:
        """The file holding the database, for embedded databases."""
        return None

    def on_connect(self, dbapi_connection: Any, read_only: bool, timeout_ms: int) -> None:
        """Session defaults for a new connection (SQLAlchemy "connect" event)."""
        return None

    # --- statements

    async def prepare_read(self, conn: Any, timeout_ms: int) -> None:
        """Before a lone read outside an explicit transaction: make the session current."""
        return None

    def choose_isolation(self, level: str | None, read_only: bool) -> str | None:
        """The isolation level a transaction_manager batch runs at; refuses unsupported ones."""
        if level is not None and level not in self.isolation_levels:
            raise InvalidArgument(
                f"unknown isolation level {level!r}", f"use one of: {', '.join(self.isolation_levels)}"
            )
        if level is None and read_only:
            return "repeatable_read"  # a batch of reads is one consistent snapshot
        return level

    @abstractmethod
    async def begin(
        self, conn: Any, *, read_only: bool, isolation: str | None, timeout_ms: int, default_timeout_ms: int
    ) -> Any:
        """Start a transaction; returns the state commit/rollback need."""

    @abstractmethod
    async def commit(self, conn: Any, state: Any) -> None: ...

    @abstractmethod
    async def rollback(self, conn: Any, state: Any) -> None: ...

    def arm_deadline(self, conn: Any, timeout_ms: int) -> None:
        """Restart a client-enforced statement deadline for more statements in an open
        transaction (interactive transactions); servers with their own timeout need nothing."""
        return None

    @abstractmethod
    async def execute(
        self, conn: Any, statement: exp.Expr, params: dict[str, Any], budget: RowBudget, timeout_ms: int
    ) -> RawResult:
        """Run one checked statement with bound ``params``; stream its rows into ``budget``
        in chunks of ``budget.chunk()`` rows until ``budget.take`` says stop, then close the
        statement (a cursor closed, a portal closed; ``unread`` when only the boundary can)."""

    # --- errors and cancellation (the execution boundary, db/boundary.py)

    def map_error(self, exc: BaseException, timeout_ms: int) -> SqlgateError:
        """The sqlgate error for a driver exception (subclasses classify theirs first)."""
        if isinstance(exc, SqlgateError):
            return exc
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            return timeout_error(timeout_ms)
        if isinstance(exc, (ConnectionError, OSError, EOFError)):
            return unavailable(f"lost the connection to the database: {exc or type(exc).__name__}")
        return db_error(exc)

    def answered(self, exc: BaseException | None) -> bool:
        """True when ``exc`` is an error the server reported on a live connection: the
        connection is in a known state (a transaction in it is rolled back by its owner).
        Anything else (client timeouts, lost connections, cancellation) is not."""
        return False

    async def cancel(self, conn: Any, engine: Any) -> None:  # noqa: B027 - optional hook
        """Stop whatever ``conn`` is running, in the database (from outside the
        connection: a cancel request, ``KILL QUERY`` on a second connection, an interrupt)."""

    async def ping(self, conn: Any) -> None:  # noqa: B027 - optional hook
        """One round trip proving a pooled connection is alive (raises if it is not)."""

    def socket_open(self, conn: Any) -> bool:
        """False when the driver already knows ``conn`` is closed (the server ended it, or
        sent its end of the stream): a check without a round trip."""
        return True

    def abort(self, conn: Any) -> None:  # noqa: B027 - optional hook
        """Close ``conn``'s socket at once, without a goodbye round trip."""

    # --- catalog

    def server_version(self, reported: str) -> str:
        """The version text shown in health and logs."""
        return reported

    def extra_unique_constraints(self, sync_conn: Any, schema: str | None, name: str) -> list[tuple[str, ...]]:
        """Unique constraints the SQLAlchemy inspector does not report."""
        return []

    # --- health

    @abstractmethod
    async def round_trip(self, conn: Any, name: str, steps: list[str], read_only: bool) -> bool:
        """Create/insert/select/update/delete on TEMP table ``name`` in a transaction that is
        rolled back, appending each step done to ``steps``; True if anything persisted."""

    # --- least privilege (db/privileges.py: `sqlgate grants`, health's privileges section)

    def grant_statements(self, plan: GrantPlan) -> list[str] | None:
        """The DDL creating the least-privilege role of ``plan``; None: the database has no roles."""
        return None

    async def privilege_findings(self, conn: Any, plan: GrantPlan) -> list[str] | None:
        """What the connected role may read beyond ``plan``; None: not checked here."""
        return None

    # --- bulk insert

    def add_conflict_clause(
        self, statement: exp.Insert, on_conflict: str, conflict_columns: Sequence[str], update_columns: Sequence[str]
    ) -> None:
        """Give bulk_insert's single-row INSERT its ``on_conflict`` behaviour."""
        clause = on_conflict_clause(on_conflict, conflict_columns, update_columns)
        if clause is not None:
            statement.set("conflict", clause)

    @abstractmethod
    async def insert_rows(self, plan: BulkPlan, conn: Any, rows: list[tuple[Any, ...]], timeout_s: float) -> Counts:
        """Insert ``rows`` (tuples in ``plan.columns`` order) the fastest way this driver offers."""

    async def stream_insert(
        self,
        plan: BulkPlan,
        conn: Any,
        batches: list[list[tuple[Any, ...]]],
        on_batch: Callable[[int, int], Awaitable[None]],
        timeout_ms: int,
    ) -> Counts | None:
        """Every batch of an atomic call in one statement, if the driver can; else None."""
        return None

    def failed_record(self, exc: BaseException) -> int | None:
        """The index of the row a failed ``stream_insert`` stopped at, when the error says."""
        return None

    # --- plans and index advice (query_optimization) -------------------------------
    # Owned by the advisor. A dialect that does not override ``explain`` cannot be
    # advised on: the advisor reports an error, never another database's EXPLAIN.
    # ``what_if_own_connection``: hypothetical indexes are tried on a separate connection
    # after the advisor's transaction ended (SQLite: a real index rolled back), not on it.
    what_if_own_connection: ClassVar[bool] = False

    async def explain(
        self, conn: Any, statement: exp.Expr, params: dict[str, Any], *, analyze: bool, timeout_ms: int,
        server_version: str, generic: bool = False,
    ) -> RawPlan:
        """The plan of ``statement`` (executed too when ``analyze``), on the advisor's transaction."""
        raise DatabaseError(
            f"query_optimization does not know how to EXPLAIN on {self.name}",
            "use execute_query; plans are available on PostgreSQL, MySQL/MariaDB/TiDB and SQLite",
        )

    async def table_rows(self, conn: Any, schema: str | None, name: str) -> float | None:
        """An approximate row count from the catalog, without failing the caller's transaction."""
        return None

    def index_syntax(self, server_version: str) -> IndexSyntax:
        return IndexSyntax()

    async def what_if_unavailable(self, conn: Any, location: str | None) -> str | None:
        """Why hypothetical indexes cannot be planned here (None: ``plan_with_indexes`` works)."""
        return UNVERIFIED_NO_WHAT_IF

    async def plan_with_indexes(
        self, conn: Any, location: str | None, statement: exp.Expr, params: dict[str, Any],
        indexes: list[tuple[str, str]], timeout_ms: int, *, sizes: bool = False, generic: bool = False,
    ) -> WhatIfPlan:
        """Plan ``statement`` as if the ``(name, CREATE INDEX ...)`` indexes existed; nothing is kept."""
        raise DatabaseError(f"{self.name} cannot plan hypothetical indexes", UNVERIFIED_NO_WHAT_IF)

    async def check_index(self, conn: Any, location: str | None, create_statement: str) -> str | None:
        """Why the server would refuse ``create_statement`` (None: it accepts it)."""
        return None

    async def top_statements(self, conn: Any, limit: int) -> list[tuple[str, int, float]]:
        """(normalised text with $n placeholders, calls, total ms) of the costliest statements."""
        raise DatabaseError(
            f"{self.name} keeps no statement statistics sqlgate can read (PostgreSQL: pg_stat_statements)",
            "pass the queries themselves in `queries`",
        )

    # --- end of plans and index advice
