"""SQLite through aiosqlite."""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from sqlglot import exp

from sqlgate.db.dialects.base import (
    BulkPlan,
    Counts,
    Dialect,
    RawResult,
    bind,
    busy,
    constraint_violation,
    db_error,
    db_write_refused,
    timeout_error,
    unavailable,
    unreadable_value,
)
from sqlgate.db.dialects.plans import (  # query_optimization hooks
    IndexSyntax,
    RawPlan,
    WhatIfFailed,
    WhatIfPlan,
)
from sqlgate.errors import InvalidArgument, SqlgateError
from sqlgate.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import URL

    from sqlgate.db.results import RowBudget


log = get_logger("sqlgate.db")


class SQLiteDialect(Dialect):
    name = "sqlite"
    sqlglot_dialect = "sqlite"
    async_driver = "sqlite+aiosqlite"
    pool_pre_ping = False  # a SQLite file cannot drop the connection
    # SQLite has one isolation level, serializable; read_uncommitted only matters for
    # connections sharing a cache (PRAGMA read_uncommitted). Anything else would be a lie.
    isolation_levels = ("serializable", "read_uncommitted")
    # bulk_insert takes the write lock at BEGIN (IMMEDIATE), so concurrent writers wait for
    # each other (busy timeout) instead of failing when a read lock cannot be upgraded.
    bulk_isolation = "serializable"
    facts_sql = "SELECT 'SQLite ' || sqlite_version(), 'main'"
    # No maintained estimate (sqlite_stat1 exists only after ANALYZE and counts index
    # entries): always count(*).
    row_count_source = "exact count(*)"

    def __init__(self) -> None:
        # bulk_insert: the DO NOTHING form of an upsert statement, by the upsert's SQL.
        self._insert_only: dict[str, str] = {}

    def pool_kwargs(
        self, url: URL, *, pool_size: int, max_overflow: int, pool_timeout_s: float, pool_recycle_s: float
    ) -> dict[str, Any]:
        kwargs = super().pool_kwargs(
            url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout_s=pool_timeout_s,
            pool_recycle_s=pool_recycle_s,
        )
        if self.private_memory(url):
            # SQLAlchemy gives in-memory SQLite one shared connection (a static pool): no sizing.
            for key in ("pool_size", "max_overflow", "pool_timeout"):
                del kwargs[key]
        return kwargs

    def private_memory(self, url: URL) -> bool:
        return url.database in (None, "", ":memory:")

    def validate_url(self, url: URL) -> None:
        from sqlgate.errors import ConfigError

        if url.host or url.port or url.username:  # sqlite://x.db: "x.db" parsed as a host
            shown = url.render_as_string(hide_password=True).replace("sqlite+aiosqlite:", "sqlite:")
            raise ConfigError(
                f"{shown} names a host, not a file: write sqlite:///relative.db or sqlite:////absolute.db",
                "three slashes then the path relative to the working directory, or four for an absolute path",
            )

    def local_file(self, url: URL) -> Path | None:
        if self.private_memory(url):
            return None
        database = str(url.database)
        if database.startswith("file:"):  # a URI filename (engine_url, or the user's own)
            return Path(unquote(database.removeprefix("file:").split("?", 1)[0]))
        return Path(database)

    def engine_url(self, url: URL, read_only: bool) -> URL:
        # read_only opens the file read-only (mode=ro): SQLite itself refuses every write,
        # and a mistyped path is an error naming it (DB_UNAVAILABLE), never a new empty
        # database that reports healthy. (The demo database is created before it is opened.)
        if not read_only or self.private_memory(url) or str(url.database).startswith("file:"):
            return url
        path = Path(str(url.database)).expanduser().resolve()
        if not path.exists():
            log.warning("read_only SQLite database file does not exist; it is not created", path=str(path))
        return url.set(database=f"file:{quote(str(path))}", query={**url.query, "mode": "ro", "uri": "true"})

    def storage_problem(self, url: URL, read_only: bool) -> str | None:
        path = self.local_file(url)
        if read_only or path is None:
            return None
        if path.exists() and not os.access(path, os.W_OK):
            return f"mode is read_write but the file {path} is read-only: every write will fail"
        if not os.access(path.parent, os.W_OK):
            return (f"mode is read_write but the directory {path.parent} is read-only: SQLite cannot "
                    "write its journal there, every write will fail")
        return None

    def choose_isolation(self, level: str | None, read_only: bool) -> str | None:
        if level is not None and level not in self.isolation_levels:
            raise InvalidArgument(
                f"SQLite does not support isolation level {level}",
                "SQLite transactions are serializable: use serializable (or read_uncommitted), or omit it",
            )
        return level

    def arm_deadline(self, conn: Any, timeout_ms: int) -> None:
        # The statement deadline is armed at BEGIN; an interactive transaction lives longer
        # than one statement, so each call gets a fresh one.
        sqlite_deadline(conn).arm(timeout_ms)

    def on_connect(self, dbapi_connection: Any, read_only: bool, timeout_ms: int) -> None:
        import sqlite3

        raw = dbapi_connection.driver_connection._conn  # the sqlite3.Connection
        deadline = _Deadline()

        def setup() -> None:
            raw.execute("PRAGMA foreign_keys = ON")
            if read_only:
                # The second wall: SQLite itself refuses to change the database file.
                raw.execute("PRAGMA query_only = ON")
            # Checked every 1000 VM instructions: interrupts a statement past its deadline.
            raw.set_progress_handler(deadline.expired, 1000)
            # Caps SQLite itself enforces (docs/limits.md): a single function call (replace,
            # instr, printf, LIKE) is never interrupted mid-way, so the values it can work on
            # are bounded instead.
            for limit, value in SQLITE_LIMITS.items():
                raw.setlimit(getattr(sqlite3, limit), value)

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
        self, conn: Any, statement: exp.Expr, params: dict[str, Any], budget: RowBudget, timeout_ms: int
    ) -> RawResult:
        sql = bind(statement, "sqlite", params, lambda name: f":{name}")
        args = {name: _sqlite_param(value) for name, value in params.items()}
        deadline = sqlite_deadline(conn)
        armed_here = not deadline.armed
        if armed_here:
            deadline.arm(timeout_ms)
        raw = conn._conn  # the sqlite3.Connection (opened with check_same_thread=False)

        def run() -> RawResult:
            # Execute, fetch and close in one go (one hop to the driver thread, not three).
            cur = raw.execute(sql, args)
            try:
                if cur.description is None:
                    return RawResult([], [], cur.rowcount, False)
                columns = [d[0] for d in cur.description]
                # Streamed: each chunk is converted and sized before the next is read;
                # closing the cursor ends the statement where the budget stopped it.
                while True:
                    wanted = budget.chunk(first=2)  # rows of unknown width: few at first
                    chunk = cur.fetchmany(wanted)
                    if not budget.take(chunk) or len(chunk) < wanted:
                        break
                affected = cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else None
                return RawResult(columns, budget.rows, affected, budget.more)
            finally:
                cur.close()

        try:
            if not raw.in_transaction and _inline_safe(statement):
                done = _inline_read(conn, raw, run, budget, deadline)
                if done is not None:
                    return done
            # A lock wait (busy timeout) is not seen by the progress handler: keep it inside
            # the call's deadline so a held lock reports DB_BUSY, not a late TIMEOUT.
            busy_ms = min(timeout_ms * 4 // 5, _BUSY_TIMEOUT_MS)
            set_busy = busy_ms != getattr(conn, "_sqlgate_busy_ms", _BUSY_TIMEOUT_MS)
            conn._sqlgate_busy_ms = busy_ms

            def in_thread() -> RawResult:
                if set_busy:
                    raw.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
                return run()

            return await conn._execute(in_thread)  # type: ignore[no-any-return]
        finally:
            if armed_here:
                deadline.disarm()

    # --- errors and cancellation (the execution boundary, db/boundary.py)

    def map_error(self, exc: BaseException, timeout_ms: int) -> SqlgateError:
        import sqlite3

        if isinstance(exc, sqlite3.OperationalError):
            text = str(exc)
            name = getattr(exc, "sqlite_errorname", "") or ""
            if "interrupted" in text:
                return timeout_error(timeout_ms)
            if "readonly" in text or "read-only" in text or "query_only" in text:
                return db_write_refused(text)
            if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "is locked" in text:
                return busy(text)
            if name.startswith(("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_NOTADB")):
                return unavailable(f"the database file cannot be used: {text} ({name})")
            if text.startswith("Could not decode to UTF-8"):
                return unreadable_value(exc, "the column holds bytes that are not UTF-8 text: read it as "
                                             "CAST(col AS BLOB) or hex(col)")
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_TOOBIG":
            from sqlgate.errors import DatabaseError

            return DatabaseError(
                "a value or the SQL text is larger than SQLite's cap in sqlgate "
                f"({SQLITE_LIMITS['SQLITE_LIMIT_LENGTH']:,} bytes per value)",
                "build or read smaller values (substr() of a long value, fewer repetitions)",
                code="QUERY_TOO_EXPENSIVE",
            )
        if isinstance(exc, sqlite3.IntegrityError):
            return constraint_violation(str(exc), getattr(exc, "sqlite_errorname", None))
        if isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc):
            return unavailable(f"the database connection is closed: {exc}")
        if isinstance(exc, sqlite3.Error):
            return db_error(exc, getattr(exc, "sqlite_errorname", None))
        return super().map_error(exc, timeout_ms)

    def answered(self, exc: BaseException | None) -> bool:
        import sqlite3

        return isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.ProgrammingError)

    async def cancel(self, conn: Any, engine: Any) -> None:
        # The progress handler stops the statement at its next check; interrupt() stops
        # one that is running right now (it is thread-safe: the statement runs on
        # aiosqlite's thread).
        sqlite_deadline(conn).expire()
        raw = getattr(conn, "_conn", None)
        if raw is not None:
            raw.interrupt()

    def extra_unique_constraints(self, sync_conn: Any, schema: str | None, name: str) -> list[tuple[str, ...]]:
        # Unnamed inline UNIQUE constraints live only as sqlite_autoindex_* indexes.
        found: list[tuple[str, ...]] = []
        quoted = name.replace('"', '""')
        for row in sync_conn.exec_driver_sql(f'PRAGMA index_list("{quoted}")').fetchall():
            if row[3] == "u":
                index = str(row[1]).replace('"', '""')
                found.append(tuple(r[2] for r in sync_conn.exec_driver_sql(f'PRAGMA index_info("{index}")')))
        return found

    async def round_trip(self, conn: Any, name: str, steps: list[str], read_only: bool) -> bool:
        # read_write: the table is made in the database file itself, so the round trip
        # proves the file takes writes (a read-only file fails here), then rolls back.
        # read_only: a TEMP table (the file is opened mode=ro; nothing may touch it).
        schema = "temp" if read_only else "main"
        if read_only:
            await conn.execute("PRAGMA query_only = OFF")
        try:
            await conn.execute("BEGIN")
            await conn.execute(f"CREATE TABLE {schema}.{name} (id INTEGER PRIMARY KEY, note TEXT)")
            steps.append("create")
            await conn.execute(f"INSERT INTO {name} (id, note) VALUES (1, 'a'), (2, 'b')")
            steps.append("insert")
            cur = await conn.execute(f"SELECT COUNT(*) FROM {name}")
            if (await cur.fetchone())[0] != 2:
                raise RuntimeError("select did not see the inserted rows")
            steps.append("select")
            cur = await conn.execute(f"UPDATE {name} SET note = 'c' WHERE id = 1")
            if cur.rowcount != 1:
                raise RuntimeError("update did not change one row")
            steps.append("update")
            cur = await conn.execute(f"DELETE FROM {name} WHERE id = 2")
            if cur.rowcount != 1:
                raise RuntimeError("delete did not remove one row")
            steps.append("delete")
            await conn.rollback()
            steps.append("rollback")
            master = "sqlite_temp_master" if read_only else "sqlite_master"
            cur = await conn.execute(f"SELECT COUNT(*) FROM {master} WHERE name = ?", (name,))
            return bool((await cur.fetchone())[0])
        finally:
            if read_only:
                await conn.execute("PRAGMA query_only = ON")

    # ------------------------------------------------------------- bulk insert
    # executemany with ON CONFLICT; counts from total_changes.

    async def insert_rows(self, plan: BulkPlan, conn: Any, rows: list[tuple[Any, ...]], timeout_s: float) -> Counts:
        prefix, suffix = plan.row_template(lambda i: "?")
        sql = prefix + "(" + ", ".join("?" * len(plan.columns)) + ")" + suffix
        nested = {dict, list} & set(map(type, itertools.chain.from_iterable(rows)))
        args = [tuple(_sqlite_param(v) for v in row) for row in rows] if nested else rows
        sqlite_deadline(conn).arm(int((timeout_s - 2) * 1000))  # per batch, not per transaction
        before = conn.total_changes
        if not plan.upsert:
            await conn.executemany(sql, args)
            inserted = conn.total_changes - before
            return Counts(inserted=inserted, skipped=len(args) - inserted)
        # An upsert counts one change whether it inserted or updated. First insert what is
        # new (DO NOTHING); every record refused then is exactly one that updates, so
        # apply the upsert to all records in order (rows just inserted get equal values).
        insert_only = self._insert_only_sql(plan, sql)
        await conn.executemany(insert_only, args)
        inserted = conn.total_changes - before
        if inserted < len(args):
            await conn.executemany(sql, args)
        return Counts(inserted=inserted, updated=len(args) - inserted)

    def _insert_only_sql(self, plan: BulkPlan, upsert_sql: str) -> str:
        if upsert_sql not in self._insert_only:
            prefix, suffix = plan.insert_only().row_template(lambda i: "?")
            self._insert_only[upsert_sql] = prefix + "(" + ", ".join("?" * len(plan.columns)) + ")" + suffix
        return self._insert_only[upsert_sql]

    # --- plans and index advice (query_optimization) -------------------------------
    # EXPLAIN QUERY PLAN; SQLite has no EXPLAIN ANALYZE, so analyze runs the query and
    # counts the rows. "What if" indexes are real ones, built in a private in-memory copy of
    # the schema (and of the planner's statistics, sqlite_stat1/stat4): SQLite plans from the
    # schema and those statistics, never from the rows, so the copy plans as the file would,
    # while the database file is only read (a read_only database is never written, no write
    # lock is taken, and no index is built over the data: the cost does not grow with it).
    what_if_own_connection = True

    async def explain(
        self, conn: Any, statement: exp.Expr, params: dict[str, Any], *, analyze: bool, timeout_ms: int,
        server_version: str, generic: bool = False,
    ) -> RawPlan:
        sql = bind(statement, "sqlite", params, lambda name: f":{name}")
        args = {name: _sqlite_param(value) for name, value in params.items()}
        cur = await conn.execute("EXPLAIN QUERY PLAN " + sql, args)
        rows = list(await cur.fetchall())
        await cur.close()
        plan = RawPlan("sqlite-eqp", rows, analyze)
        if analyze:
            # The deadline of the transaction applies; rows are counted, not kept.
            started = time.perf_counter()
            cur = await conn.execute(sql, args)
            count = 0
            while batch := await cur.fetchmany(1000):
                count += len(batch)
            await cur.close()
            plan.actual_rows = float(count)
            plan.actual_time_ms = round((time.perf_counter() - started) * 1000, 3)
        return plan

    async def table_rows(self, conn: Any, schema: str | None, name: str) -> float | None:
        table = exp.table_(name, db=schema, quoted=True).sql("sqlite")
        try:
            cur = await conn.execute(f"SELECT max(rowid) FROM {table}")  # noqa: S608 - a quoted reflected name
            row = await cur.fetchone()
            await cur.close()
        except Exception:  # noqa: BLE001 - a view or a WITHOUT ROWID table: no estimate
            return None
        return float(row[0]) if row and row[0] is not None else None

    def index_syntax(self, server_version: str) -> IndexSyntax:
        # LIKE is case-insensitive in SQLite: only a NOCASE index serves LIKE 'abc%'.
        return IndexSyntax(expressions=True, prefix_like="nocase")

    async def what_if_unavailable(self, conn: Any, location: str | None) -> str | None:
        if not location:
            return "unverified: an in-memory database cannot be opened a second time"
        return None

    async def plan_with_indexes(
        self, conn: Any, location: str | None, statement: exp.Expr, params: dict[str, Any],
        indexes: list[tuple[str, str]], timeout_ms: int, *, sizes: bool = False, generic: bool = False,
    ) -> WhatIfPlan:
        import asyncio
        import sqlite3

        sql = "EXPLAIN QUERY PLAN " + bind(statement, "sqlite", params, lambda name: f":{name}")
        args = {name: _sqlite_param(value) for name, value in params.items()}
        try:
            return await asyncio.to_thread(_sqlite_what_if, str(location), sql, args, indexes, timeout_ms)
        except sqlite3.Error as exc:
            if "interrupted" in str(exc):
                raise timeout_error(timeout_ms) from exc
            raise WhatIfFailed(f"unverified: SQLite could not try the indexes ({exc})") from exc

    # --- end of plans and index advice


_SCHEMA_ORDER = {"table": 0, "index": 1, "view": 2}
_STATISTICS = ("sqlite_stat1", "sqlite_stat4")


def _sqlite_what_if(
    path: str, sql: str, args: dict[str, Any], indexes: list[tuple[str, str]], timeout_ms: int
) -> WhatIfPlan:
    import sqlite3

    deadline = time.monotonic() + timeout_ms / 1000

    def expired() -> int:
        return 1 if time.monotonic() > deadline else 0

    source = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, isolation_level=None, timeout=2)
    try:
        source.set_progress_handler(expired, 1000)
        schema = source.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND type IN ('table', 'index', 'view')"
        ).fetchall()
        statistics = {
            table: source.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - a fixed catalog name
            for table in _STATISTICS
            if source.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
        }
    finally:
        source.close()
    copy = sqlite3.connect(":memory:", isolation_level=None)
    built: list[bool] = []
    try:
        copy.set_progress_handler(expired, 1000)
        for _, name, ddl in sorted(schema, key=lambda row: _SCHEMA_ORDER[row[0]]):
            if str(name).lower().startswith("sqlite_"):
                continue
            try:
                copy.execute(ddl)
            except sqlite3.OperationalError as exc:
                if "interrupted" in str(exc):
                    raise
                # a virtual table whose module this build lacks, or the shadow table its virtual table made
        if statistics:
            _copy_statistics(copy, statistics)
        for _, ddl in indexes:
            try:
                copy.execute(ddl)
                built.append(True)
            except sqlite3.OperationalError as exc:
                if "interrupted" in str(exc):
                    raise  # the deadline, not this index
                built.append(False)
        details = [str(r[-1]) for r in copy.execute(sql, args).fetchall()]
    finally:
        copy.close()
    used, detail = [], []
    for (name, _), ok in zip(indexes, built, strict=True):
        hits = [d for d in details if f"index {name.lower()} " in d.lower() + " "]
        used.append(ok and bool(hits))
        detail.append("; ".join(hits))
    return WhatIfPlan(cost=None, used=used, sizes=[None] * len(indexes), detail=detail)


def _copy_statistics(copy: Any, statistics: dict[str, list[tuple[Any, ...]]]) -> None:
    """The file's planner statistics into ``copy`` (ANALYZE makes the tables, empty here;
    ``ANALYZE sqlite_master`` reloads them into the planner)."""
    import sqlite3

    copy.execute("ANALYZE")
    for table, rows in statistics.items():
        try:
            copy.execute(f"DELETE FROM {table}")  # noqa: S608 - a fixed catalog name
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                copy.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608 - a fixed catalog name
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise
            # stat4 in the file but not in this build: the planner here does not read it either
    copy.execute("ANALYZE sqlite_master")


# A read outside a transaction first runs right on the event loop, with no lock wait and
# this much time at most (the progress handler interrupts it every 1,000 VM instructions);
# most take microseconds and are done without the round trip to aiosqlite's thread. A
# longer one moves there and runs again.
INLINE_S = 0.002
# What one VM instruction may cost there is bounded too, as the progress handler cannot
# see inside one: no value longer than this (a copy or a comparison of it takes ~0.1 ms;
# a longer one moves the read to the thread), and no function call beyond these, whose
# cost is linear in such values (count(*) is one instruction over the whole table;
# instr, replace, LIKE and the like compare naively: a 10 MB instr held the loop 10 s).
INLINE_MAX_VALUE = 1 << 20
_INLINE_FUNCTIONS = (
    exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Coalesce, exp.Nullif, exp.Case, exp.If, exp.Cast, exp.Abs,
    exp.Round, exp.Lower, exp.Upper, exp.Length, exp.Exists,
)


def _inline_safe(statement: exp.Expr) -> bool:
    """A query made only of instructions whose cost the progress handler bounds."""
    if not isinstance(statement, exp.Query):
        return False
    for node in statement.walk():
        if isinstance(node, exp.Func) and not isinstance(node, _INLINE_FUNCTIONS):
            return False
        if isinstance(node, exp.Like | exp.ILike | exp.Glob | exp.SimilarTo):
            return False
    return True


def _inline_read(
    conn: Any, raw: Any, run: Callable[[], RawResult], budget: RowBudget, deadline: _Deadline
) -> RawResult | None:
    """``run()`` on this thread, or None (nothing kept) when it needs a lock wait or more
    than INLINE_S: the caller runs it again on the driver's thread."""
    import sqlite3

    busy = getattr(conn, "_sqlgate_busy_ms", _BUSY_TIMEOUT_MS)
    real = deadline.at
    inline_end = time.monotonic() + INLINE_S
    deadline.at = inline_end if real is None else min(real, inline_end)
    raw.execute("PRAGMA busy_timeout = 0")  # a held lock answers at once, never blocks the loop
    raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, INLINE_MAX_VALUE)
    try:
        return run()
    except sqlite3.Error as exc:
        text, name = str(exc), getattr(exc, "sqlite_errorname", "") or ""
        interrupted = "interrupted" in text and (real is None or time.monotonic() < real)
        if interrupted or name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_TOOBIG")) or "is locked" in text:
            budget.reset()
            return None
        raise
    finally:
        deadline.at = real
        raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, SQLITE_LIMITS["SQLITE_LIMIT_LENGTH"])
        raw.execute(f"PRAGMA busy_timeout = {int(busy)}")


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

    def expire(self) -> None:
        self.at = float("-inf")  # the boundary cancelled the call

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


_BUSY_TIMEOUT_MS = 5000  # sqlite3's default lock wait
# sqlite3.setlimit caps set on every connection (https://www.sqlite.org/limits.html,
# https://www.sqlite.org/security.html): the longest string or blob any expression may
# build or read, the longest SQL text, the longest LIKE/GLOB pattern, the most bound
# parameters (guard.MAX_PARAMETERS).
SQLITE_LIMITS = {
    "SQLITE_LIMIT_LENGTH": 16 << 20,  # as MariaDB's default max_allowed_packet
    "SQLITE_LIMIT_SQL_LENGTH": 1_000_000,
    # LIKE/GLOB compare naively and uninterrupted (~0.03 s per pattern byte over a 16 MiB
    # value): a short pattern keeps one comparison to seconds at worst.
    "SQLITE_LIMIT_LIKE_PATTERN_LENGTH": 100,
    "SQLITE_LIMIT_VARIABLE_NUMBER": 1_000,
}
