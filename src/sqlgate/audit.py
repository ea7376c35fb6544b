"""The audit log: one row per tool call in ``sqlgate_audit``, written off the request path.

The tool boundary (``SqlgateServer.call_tool``) hands every finished call to
``AuditLog.submit``, which only builds a dict and puts it on an asyncio queue: the call
never waits for the audit database. A background task drains the queue and inserts what
has gathered in one batch (under a burst, batches form by themselves while the previous
insert runs). ``close()`` — called by the server lifespan on a clean shutdown — writes
everything still queued before the engines close.

A broken sink (database down or silent, table missing, disk full, file locked, corrupt or
deleted) never fails a tool call: the failure is logged, ``health_check`` reports the audit
log as broken (status ``degraded``), and the rows are kept in memory (up to
``MAX_PENDING``) and retried; beyond that they are dropped and counted. Every write is
bounded (``WRITE_TIMEOUT_S``): a sink that stops answering is broken, not a writer stuck for
ever while the queue fills unseen.

No record can poison the log: every text is made storable before it is queued (lone
surrogates and NUL written as visible ``\\uXXXX`` escapes, a backslash in such a text
doubled, so nothing is lost; texts cut to what their column holds on every sink). A batch
that the sink refuses for what a record holds (a constraint, a value that does not fit:
the DB-API's IntegrityError / DataError, SQLSTATE classes 22 and 23) is retried record by
record; a record refused so while the sink itself works is logged once, counted
(``rejected``) and skipped, never blocking the others. Any other failure (disk full, a lock,
a lost link) is the sink's, never a record's: the records are kept for the retry.

The sink is ``settings.audit_database_url``, or by default ``audit.sqlite3`` beside the
demo database in ``data_dir`` (created and migrated on first use). A server database
used as the sink must be prepared with ``sqlgate migrate upgrade`` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from sqlgate.logging import get_logger, mask_secrets
from sqlgate.migrations.tables import AUDIT_TABLE as AUDIT_TABLE
from sqlgate.migrations.tables import audit_table

if TYPE_CHECKING:
    from sqlgate.calls import CallRecord
    from sqlgate.settings import Settings

log = get_logger("sqlgate.audit")

MAX_QUEUE = 10_000  # calls waiting to be written; beyond it new records are dropped (counted)
MAX_PENDING = 10_000  # rows kept for a retry while the sink is broken
BATCH = 500
RETRY_S = 2.0
FLUSH_S = 0.05  # gather a batch this long after the first record: one insert, not one per call
CLOSE_TIMEOUT_S = 15.0
SQLITE_BUSY_S = 5.0  # a SQLite file locked by another process is waited for this long
# One write attempt (a batch insert, a probe) may take this long; then the sink is broken.
# Longer than a SQLite file's busy timeout, so a lock reports as itself.
WRITE_TIMEOUT_S = 10.0
_SQL_LIMIT = 1_000_000  # characters of SQL kept per record
_TEXT_BYTES = 60_000  # TEXT columns (parameters, table_names): MySQL's TEXT holds 65,535 bytes
_HOSTILE = re.compile("[\\x00\\ud800-\\udfff]")


def storable_text(value: str | None, limit_chars: int | None = None, limit_bytes: int | None = None) -> str | None:
    """``value`` as every sink can store it, nothing silently lost.

    Lone surrogates (not Unicode: UTF-8 cannot encode them, drivers fail the whole batch)
    and NUL (PostgreSQL text refuses it) become visible escapes: ``\\ud800``, ``\\u0000``;
    in a text that needed one, backslashes are doubled so the escapes read back exactly.
    A text over its column's size is cut with a marker saying how much was left out.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    if _HOSTILE.search(value):
        value = _HOSTILE.sub(lambda m: f"\\u{ord(m.group()):04x}", value.replace("\\", "\\\\"))
    if limit_chars is not None and len(value) > limit_chars:
        if limit_chars < 1000:  # a short column (names, codes): cut to fit
            return value[:limit_chars]
        value = value[:limit_chars] + f"…[{len(value) - limit_chars} more characters not stored]"
    if limit_bytes is not None:
        encoded = value.encode("utf-8")
        if len(encoded) > limit_bytes:
            kept = encoded[: limit_bytes - 100].decode("utf-8", "ignore")
            value = kept + f"…[{len(value) - len(kept)} more characters not stored]"
    return value


def sink_url(settings: Settings) -> str:
    """Where the audit log goes: the configured URL or the local default file."""
    return settings.audit_sink_url()


def redact_parameters(parameters: dict[str, Any] | None, mode: str) -> str | None:
    """The parameters as stored: names with ``"<redacted>"``, a SHA-256 per value, or plain."""
    if not parameters:
        return None
    try:
        return _shown_parameters(parameters, mode)
    except (TypeError, ValueError, RecursionError) as exc:  # e.g. an int past 4,300 digits
        return json.dumps({"<unstorable parameters>": type(exc).__name__})


def _shown_parameters(parameters: dict[str, Any], mode: str) -> str:
    if mode == "plain":
        shown: dict[str, Any] = dict(parameters)
    elif mode == "hash":
        shown = {
            name: "sha256:" + hashlib.sha256(
                json.dumps(value, sort_keys=True, default=str).encode()
            ).hexdigest()
            for name, value in parameters.items()
        }
    else:
        shown = dict.fromkeys(parameters, "<redacted>")
    return json.dumps(shown, sort_keys=True, default=str, ensure_ascii=False)


@dataclass
class AuditStatus:
    enabled: bool
    sink: str
    state: str  # ok | broken | starting | closed | disabled
    written: int = 0
    queued: int = 0
    pending_retry: int = 0
    dropped: int = 0
    rejected: int = 0  # records the sink refused while it worked (logged once each)
    last_error: str | None = None
    migrations: str | None = None  # the sink's sqlgate branch: current | behind | not_installed


class AuditLog:
    """The queue, the background writer and the sink's engine. One per server lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.url = sink_url(settings)
        self.default_sink = settings.audit_database_url is None
        self.parameters_mode = settings.audit_parameters
        self.transport = settings.transport
        self.display_url = mask_secrets(self.url)
        self.state = "starting"
        self.written = 0
        self.dropped = 0
        self.rejected = 0
        self.last_error: str | None = None
        self.migrations: str | None = None
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=MAX_QUEUE)
        self._pending: list[dict[str, Any]] = []
        self._engine: Any = None
        self._sqlite = False  # the sink is a SQLite file (set by start)
        self._file: tuple[str, tuple[int, int] | None] | None = None  # a SQLite sink's path, (dev, inode) opened
        self._inflight = 0  # records in the write under way
        self._abandoned: set[asyncio.Future[Any]] = set()  # writes given up on (a silent sink)
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._sigterm_loop: asyncio.AbstractEventLoop | None = None
        self._sigterm_task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Open the sink (creating the default file) and start the writer. Never raises."""
        from sqlalchemy.ext.asyncio import create_async_engine

        from sqlgate.db import dialects

        try:
            url = dialects.async_url(self.url)
            sqlite = self._sqlite = url.get_backend_name() == "sqlite"
            if sqlite:  # a file: no liveness ping (each one a hop to the driver's thread)
                kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_S}}
                if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
                    self._file = (url.database, None)
            else:
                kwargs = {"pool_pre_ping": True, "pool_size": 1, "max_overflow": 1}
                timeout_arg = dialects.for_url(url).connect_timeout_arg
                if timeout_arg is not None:  # a silent sink: the connect gives up too
                    kwargs["connect_args"] = {timeout_arg: WRITE_TIMEOUT_S}
            self._engine = create_async_engine(url, **kwargs)
            if sqlite:
                sa.event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
            await self._bounded(self._open_sink())
            self.state = "ok"
        except Exception as exc:  # noqa: BLE001 - a broken sink must not stop the server
            self._broken(exc, "the audit database is not usable")
        self._task = asyncio.create_task(self._run(), name="sqlgate-audit-writer")

    def flush_on_sigterm(self) -> None:
        """stdio: a host that ends sqlgate with SIGTERM still gets the queue written.

        The handler writes what is queued (bounded), then lets SIGTERM end the process as
        it would have. HTTP transports stop gracefully on SIGTERM through the lifespan.
        """
        import os
        import signal

        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # someone else handles SIGTERM
        loop = asyncio.get_running_loop()

        async def flush_then_exit() -> None:
            try:
                await asyncio.wait_for(self.close(), CLOSE_TIMEOUT_S)
            finally:
                self.forget_sigterm()
                os.kill(os.getpid(), signal.SIGTERM)

        def on_sigterm() -> None:
            self._sigterm_task = loop.create_task(flush_then_exit())

        try:
            loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            return
        self._sigterm_loop = loop

    def forget_sigterm(self) -> None:
        import signal

        loop, self._sigterm_loop = self._sigterm_loop, None
        if loop is not None:
            loop.remove_signal_handler(signal.SIGTERM)

    async def close(self) -> None:
        """Write everything queued (clean shutdown), then close the sink. Idempotent."""
        if self.state == "closed":
            return
        if self._closing.is_set():  # a close is already under way (SIGTERM and lifespan)
            if self._task is not None:
                await asyncio.wait({self._task}, timeout=CLOSE_TIMEOUT_S)
            return
        if self._task is not None:
            self._closing.set()
            try:
                self._queue.put_nowait(None)
            except asyncio.QueueFull:
                pass  # the writer sees _closing after draining
            try:
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_TIMEOUT_S)
            except TimeoutError:
                log.error("audit log: gave up flushing at shutdown", unwritten=self._backlog() + self._inflight)
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=1.0)  # let it put its connection back
        lost = self._backlog() + self._inflight
        if lost:
            self.dropped += lost
            log.error("audit log: records lost at shutdown, the sink is broken", lost=lost, sink=self.display_url)
        if self._engine is not None:
            await self._engine.dispose()
        self.state = "closed"

    # -- the request path -----------------------------------------------------

    def submit(self, call: CallRecord, outcome: str, code: str | None, seconds: float) -> None:
        """Queue one finished call (the hook the tool boundary calls). Never blocks, never raises."""
        try:
            row = self._row(call, outcome, code, seconds)
        except Exception as exc:  # noqa: BLE001 - a record that cannot even be built is counted
            self.rejected += 1
            log.error("audit log: a record could not be built and was skipped",
                      request_id=getattr(call, "request_id", None), error=type(exc).__name__)
            return
        try:
            self._queue.put_nowait(row)
        except asyncio.QueueFull:
            self.dropped += 1

    def _row(self, call: CallRecord, outcome: str, code: str | None, seconds: float) -> dict[str, Any]:
        now = time.time()
        return {
            "at": dt.datetime.fromtimestamp(now - seconds, dt.UTC).replace(tzinfo=None),
            "request_id": storable_text(call.request_id, 32),
            "transport": storable_text(self.transport, 20),
            "client": storable_text(getattr(call, "client", None) or None, 150),
            "tool": storable_text(call.tool, 90),
            "database_name": storable_text(call.database, 90),
            "sql_text": storable_text(call.sql, _SQL_LIMIT) if call.sql else None,
            "parameters": storable_text(
                redact_parameters(getattr(call, "parameters", None), self.parameters_mode), None, _TEXT_BYTES
            ),
            "verdict": storable_text(call.verdict, 10),
            "code": storable_text(code, 40),
            "statement_kind": storable_text(call.statement_kind, 40),
            "table_names": storable_text(",".join(call.tables), None, _TEXT_BYTES) if call.tables else None,
            "row_count": _int_or_none(call.rows),
            "rows_affected": _int_or_none(call.rows_affected),
            "duration_ms": round(seconds * 1000, 3),
            "outcome": storable_text(outcome, 10),
        }

    def status(self) -> AuditStatus:
        return AuditStatus(
            enabled=True,
            sink=self.display_url,
            state=self.state,
            written=self.written,
            queued=self._queue.qsize(),
            pending_retry=len(self._pending),
            dropped=self.dropped,
            rejected=self.rejected,
            last_error=self.last_error,
            migrations=self.migrations,
        )

    # -- the writer -----------------------------------------------------------

    async def _run(self) -> None:
        stop = False
        while not stop:
            if self._closing.is_set() and self._queue.empty():
                await self._write([])  # last try for rows kept after a failure
                return
            item = await self._queue.get()
            batch: list[dict[str, Any]] = []
            if item is None:
                stop = True
            else:
                batch.append(item)
                if not self._closing.is_set():
                    # Let a batch gather; a close() cuts the wait short.
                    try:
                        await asyncio.wait_for(self._closing.wait(), FLUSH_S)
                    except TimeoutError:
                        pass
            while len(batch) < BATCH and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    stop = True
                else:
                    batch.append(more)
            if stop:  # shutdown: take the rest too
                while not self._queue.empty():
                    more = self._queue.get_nowait()
                    if more is not None:
                        batch.append(more)
            await self._write(batch)
            if self.state == "broken" and not stop:
                # Back off instead of hammering a dead sink; a close() cuts the wait short.
                try:
                    await asyncio.wait_for(self._closing.wait(), RETRY_S)
                except TimeoutError:
                    pass

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        rows, self._pending = self._pending + batch, []
        if not rows:
            return
        done = 0
        self._inflight = len(rows)
        try:
            if self._engine is None:
                raise RuntimeError("the audit database could not be opened")
            if self._file is not None and self._file[1] != _file_identity(self._file[0]):
                await self._bounded(self._reopen())
            for start in range(0, len(rows), BATCH):
                chunk = rows[start:start + BATCH]
                try:
                    await self._bounded(self._insert(chunk))
                except Exception as exc:
                    if not refused_for_content(exc):  # the sink's own failure: keep them all
                        raise _SinkBroken(chunk, exc) from exc
                    await self._write_one_by_one(chunk)  # find the record(s) the sink refuses
                else:
                    self.written += len(chunk)
                done += len(chunk)
            if self.state == "broken":
                log.info("audit log: the sink works again", sink=self.display_url)
            self.state = "ok"
            self.last_error = None
        except _SinkBroken as broken:
            unwritten = broken.rest + rows[done + BATCH:]  # this chunk's unwritten tail + the rest
            self._pending = unwritten[-MAX_PENDING:]
            self.dropped += len(unwritten) - len(self._pending)
            self._broken(broken.error, "writing audit records failed")
        except Exception as exc:  # noqa: BLE001 - audit failures never reach a tool call
            unwritten = rows[done:]
            self._pending = unwritten[-MAX_PENDING:]
            self.dropped += len(unwritten) - len(self._pending)
            self._broken(exc, "writing audit records failed")
        finally:
            self._inflight = 0

    async def _insert(self, chunk: list[dict[str, Any]]) -> None:
        """One batch, one transaction. On a SQLite file, in one hop to the driver's thread
        (executemany and commit there): SQLAlchemy's path takes nine, which under a stream
        of calls cost more than the inserts."""
        assert self._engine is not None
        if not self._sqlite:
            async with self._engine.begin() as conn:
                await conn.execute(audit_table.insert(), chunk)
            return
        async with self._engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection  # aiosqlite.Connection
            await driver._execute(_sqlite_insert, driver._conn, chunk)

    async def _write_one_by_one(self, chunk: list[dict[str, Any]]) -> None:
        """After a failed batch: each record alone. A record that fails while the sink takes
        a probe is refused for what it holds: logged once, counted, skipped. If the probe
        fails too the sink is broken: raise, and the rest waits for a retry."""
        for index, row in enumerate(chunk):
            try:
                await self._bounded(self._insert_one(row))
            except Exception as exc:  # noqa: BLE001
                if not refused_for_content(exc) or not await self._sink_works():
                    # Keep this record and the rest of the chunk for the retry.
                    raise _SinkBroken(chunk[index:], exc) from exc
                self.rejected += 1
                log.error(
                    "audit log: the sink refused a record; it is skipped, the others are written",
                    request_id=row.get("request_id"), tool=row.get("tool"),
                    error=mask_secrets(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)[:500],
                )
            else:
                self.written += 1

    async def _insert_one(self, row: dict[str, Any]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(audit_table.insert(), [row])

    async def _sink_works(self) -> bool:
        async def probe() -> None:
            async with self._engine.connect() as conn:
                await conn.execute(sa.select(sa.func.count()).select_from(audit_table).where(sa.false()))

        try:
            await self._bounded(probe())
            return True
        except Exception:  # noqa: BLE001
            return False

    async def _bounded(self, work: Coroutine[Any, Any, None]) -> None:
        """``work`` within ``WRITE_TIMEOUT_S``. A sink that does not answer by then is given
        up on: the attempt is cancelled and left to end in the background, and the pool is
        replaced (the connection it holds may never come back), so the retry starts afresh."""
        attempt = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({attempt}, timeout=WRITE_TIMEOUT_S)
        except asyncio.CancelledError:
            attempt.cancel()
            raise
        if not done:
            attempt.cancel()
            self._abandoned.add(attempt)
            attempt.add_done_callback(self._abandoned.discard)
            with contextlib.suppress(Exception):
                await self._engine.dispose(close=False)
            raise TimeoutError(f"the audit database did not answer within {WRITE_TIMEOUT_S:g} s")
        attempt.result()

    async def _open_sink(self) -> None:
        if self.default_sink:
            await self._prepare_default_sink()
        await self._check_table()
        if self._file is not None:
            self._file = (self._file[0], _file_identity(self._file[0]))

    async def _reopen(self) -> None:
        """The SQLite file was deleted or replaced under the server (its data directory
        removed, a restore): records written through the old connections would go to a
        file no one can read. Close them and open the file at the path (the default file
        is created again)."""
        assert self._file is not None
        if self._file[1] is not None:  # (not again at each retry while it cannot be opened)
            log.warning("audit log: the audit file was deleted or replaced; opening it again", path=self._file[0])
        self._file = (self._file[0], None)
        await self._engine.dispose()
        await self._open_sink()

    def _backlog(self) -> int:
        return len(self._pending) + self._queue.qsize()

    def _broken(self, exc: BaseException, what: str) -> None:
        message = mask_secrets(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        if self.state != "broken" or self.last_error != message:
            log.error(f"audit log: {what}; tool calls go on, records are kept for a retry",
                      sink=self.display_url, error=message)
        self.state = "broken"
        self.last_error = message

    async def _prepare_default_sink(self) -> None:
        """The local default file: create the directory and bring the table to head."""
        from pathlib import Path

        from sqlgate import migrations

        path = Path(self.url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        async with self._engine.connect() as conn:
            revisions = await conn.run_sync(migrations.current_revisions)
        if SQLGATE_AUDIT_HEAD not in revisions:
            await migrations.upgrade(self.url, f"{migrations.SQLGATE_BRANCH}@head")

    async def _check_table(self) -> None:
        from sqlgate import migrations

        async with self._engine.connect() as conn:
            exists = await conn.run_sync(lambda c: sa.inspect(c).has_table(AUDIT_TABLE))
            revisions = await conn.run_sync(migrations.current_revisions)
        if SQLGATE_AUDIT_HEAD in revisions:
            self.migrations = "current"  # the common start: no Alembic script directory to load
        else:
            self.migrations = (await asyncio.to_thread(migrations.branch_status, revisions)).state
        if not exists:
            raise RuntimeError(
                f"table {AUDIT_TABLE} does not exist; run: sqlgate migrate upgrade --audit"
            )


class _SinkBroken(Exception):  # noqa: N818 - internal signal, not an error type
    """Record-by-record writing stopped because the sink itself failed."""

    def __init__(self, rest: list[dict[str, Any]], error: BaseException) -> None:
        super().__init__(str(error))
        self.rest = rest
        self.error = error


def refused_for_content(exc: BaseException) -> bool:
    """True when the sink refused a record for what it holds (a constraint, a value that does
    not fit: the DB-API's IntegrityError or DataError, SQLSTATE classes 22 and 23), not for
    its own state (disk full, locked, read-only, corrupt, gone, silent)."""
    seen: BaseException | None = exc
    for _ in range(4):  # SQLAlchemy's error -> the adapter's -> the driver's
        if seen is None:
            break
        if {kind.__name__ for kind in type(seen).__mro__} & {"IntegrityError", "DataError"}:
            return True
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(state, str) and state[:2] in ("22", "23"):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def _file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None when there is none."""
    import os

    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino)


def _int_or_none(value: Any) -> int | None:
    """An INTEGER column's value; counts past 32 bits are stored as NULL, not refused."""
    if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
        return value
    return None


_SQLITE_COLUMNS = tuple(c.name for c in audit_table.columns if c.name != "id")
_SQLITE_INSERT = (
    f"INSERT INTO {AUDIT_TABLE} ({', '.join(_SQLITE_COLUMNS)}) VALUES ({', '.join('?' * len(_SQLITE_COLUMNS))})"
)


def _sqlite_insert(db: Any, rows: list[dict[str, Any]]) -> None:
    """On aiosqlite's thread, with its ``sqlite3.Connection``: the rows in one transaction.
    Times are stored as SQLAlchemy's SQLite DateTime stores them (text, microseconds)."""
    values = [
        tuple(row["at"].strftime("%Y-%m-%d %H:%M:%S.%f") if name == "at" else row[name] for name in _SQLITE_COLUMNS)
        for row in rows
    ]
    try:
        db.executemany(_SQLITE_INSERT, values)
        db.commit()
    except BaseException:
        db.rollback()
        raise


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers (an operator's query) never block the writer. synchronous=NORMAL in
    # WAL mode cannot corrupt the file; a power cut may lose the last batches.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


SQLGATE_AUDIT_HEAD = "sqlgate_0001"  # the sqlgate branch's head; a test keeps it equal


async def start_audit(settings: Settings) -> AuditLog | None:
    """Lifespan start: open the audit log (None when disabled).

    The server hooks ``AuditLog.submit`` into its tool boundary and keeps the log on the
    runtime; this module knows nothing of the server.
    """
    if not settings.audit_enabled:
        return None
    audit = AuditLog(settings)
    await audit.start()
    if settings.transport == "stdio":
        audit.flush_on_sigterm()
    return audit


async def stop_audit(audit: AuditLog | None) -> None:
    """Lifespan end: flush everything queued, then close the sink."""
    if audit is None:
        return
    audit.forget_sigterm()
    await audit.close()


def client_name(context: Any) -> str | None:
    """``name/version`` of the MCP client, when the request says who it is."""
    try:
        info = context.request_context.session.client_params.client_info
    except Exception:  # noqa: BLE001 - no context, no session, or an anonymous client
        return None
    if info is None:
        return None
    return f"{info.name}/{info.version}"[:200] if getattr(info, "version", None) else str(info.name)[:200]
