"""The execution boundary: every statement sqlgate sends passes through here.

One call has one ``Deadline`` covering pool checkout, connect, the pool's liveness
check, the statement and the fetch. ``checkout`` takes a connection from the pool under
it; ``guarded`` runs one step (begin, a statement, commit, ...) on that connection under
it. Both map errors at this one place (in the style of httpx's
``map_httpcore_exceptions``) and decide what becomes of the connection:

* the server answered (an SQL error, its own statement timeout): the connection is in a
  known state and stays with its owner (a transaction is rolled back by its owner);
* anything else (our deadline, a cancelled call: client cancel, disconnect, shutdown; a
  lost connection; an unexpected exception): the statement is cancelled IN the database
  (``Dialect.cancel``: PostgreSQL cancel request, MariaDB ``KILL QUERY``, SQLite
  ``interrupt()``), the socket is closed and the connection is invalidated, never pooled.

The clean-up runs in its own task, so a cancelled caller cannot interrupt it; it is
bounded, and the caller waits for it a short while, shielded. ``CancelledError`` and the
other ``BaseException``s that are not errors pass through unmapped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from sqlgate.db.engines import CLEAN_ON_RETURN
from sqlgate.errors import DatabaseUnavailable, PoolExhausted, QueryTimeout, SqlgateError
from sqlgate.logging import get_logger

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from sqlgate.db.engines import Database

log = get_logger("sqlgate.db")

# The client deadline is the statement timeout plus this: on a healthy link the server's
# own timeout reports first and the connection stays usable.
GRACE_S = 0.2
# How long a failed call waits (shielded) for its clean-up before it answers; the
# clean-up goes on in the background after that, up to CLEANUP_MAX_S.
CLEANUP_WAIT_S = 0.4
CLEANUP_MAX_S = 5.0


class Deadline:
    """The one deadline of a call: ``timeout_ms`` from now, plus ``GRACE_S``."""

    __slots__ = ("at", "timeout_ms")

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self.at = asyncio.get_running_loop().time() + timeout_ms / 1000 + GRACE_S

    def remaining(self) -> float:
        return self.at - asyncio.get_running_loop().time()


class Lease:
    """A pooled connection held by one call or one transaction."""

    __slots__ = ("alive", "conn", "database", "info", "nothing_open", "sa_conn")

    def __init__(self, database: Database, sa_conn: AsyncConnection, conn: Any, info: dict[str, Any]) -> None:
        self.database = database
        self.sa_conn = sa_conn
        self.conn = conn  # the driver connection (asyncpg / aiomysql / aiosqlite)
        self.info = info  # the pool's record of this connection
        self.alive = True
        # Set by a caller whose steps left no transaction open (an autocommitted read):
        # the pool skips its reset (a ROLLBACK round trip on MySQL) on return.
        self.nothing_open = False

    async def release(self) -> None:
        """Give a connection in a known state back to the pool."""
        if self.alive:
            self.alive = False
            if self.nothing_open:
                self.info[CLEAN_ON_RETURN] = True
            await self.sa_conn.close()

    async def discard(self, *, cancel: bool) -> None:
        """Never pool this connection again; with ``cancel``, first stop whatever it runs
        in the database. Returns after the clean-up or ``CLEANUP_WAIT_S``, whichever is
        first; a cancelled caller still waits (shielded), then sees its cancellation."""
        if not self.alive:
            return
        self.alive = False
        task = asyncio.get_running_loop().create_task(
            _clean_up(self.database, self.sa_conn, self.conn, cancel), name="sqlgate-db-cleanup"
        )
        pending = self.database.cleanups
        pending.add(task)
        task.add_done_callback(pending.discard)
        with anyio.CancelScope(shield=True):
            await asyncio.wait({task}, timeout=CLEANUP_WAIT_S)


async def _clean_up(database: Database, sa_conn: AsyncConnection, conn: Any, cancel: bool) -> None:
    dialect = database.driver
    try:
        if cancel:
            async with asyncio.timeout(CLEANUP_MAX_S):
                await dialect.cancel(conn, database.engine)
    except Exception as exc:  # noqa: BLE001 - best effort; the socket is closed next anyway
        log.warning("could not cancel the statement in the database", database=database.name,
                    error=f"{type(exc).__name__}: {exc}"[:300])
    finally:
        try:
            dialect.abort(conn)  # close the socket now: no goodbye round trip on a bad link
        except Exception:  # noqa: BLE001, S110 - already closed
            pass
        try:
            async with asyncio.timeout(CLEANUP_MAX_S):
                await sa_conn.invalidate()
                await sa_conn.close()
        except Exception as exc:  # noqa: BLE001
            log.warning("invalidating a connection failed", database=database.name, error=str(exc)[:300])


def _pool_full(database: Database) -> bool:
    stats = database.pool_stats()
    if stats.size <= 0:
        return False
    return stats.checked_out >= stats.size + max(getattr(database.engine.pool, "_max_overflow", 0), 0)


async def checkout(database: Database, deadline: Deadline) -> Lease:
    """A live pooled connection, within the deadline: the pool wait, a connect and the
    liveness check (the dialect's one-round-trip ping, for a connection that sat in the
    pool; a dead one is replaced) included."""
    try:
        async with asyncio.timeout_at(deadline.at):
            sa_conn, raw, conn = await database.checkout()
    except TimeoutError as exc:
        if _pool_full(database):
            raise PoolExhausted(
                f"no free connection to database {database.name!r} within the call's "
                f"{deadline.timeout_ms / 1000:g} s",
                "retry shortly: too many calls are running at once",
            ) from exc
        raise _no_connection(database, deadline) from exc
    except SqlgateError:
        raise
    except Exception as exc:  # a driver error while connecting
        raise database.unreachable(exc) from exc
    return Lease(database, sa_conn, conn, raw.info)


def _no_connection(database: Database, deadline: Deadline) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"could not get a working connection to database {database.name!r} "
        f"({database.display_url}) within the call's {deadline.timeout_ms / 1000:g} s",
        "the database or the network to it is not answering; retry, and run health_check if it persists",
    )


def classify(database: Database, exc: BaseException, timeout_ms: int) -> tuple[SqlgateError | None, bool]:
    """(the error to raise, whether the connection is in a known state).

    ``None`` for a ``BaseException`` that is not an error (cancellation): it passes
    through unmapped, and the connection is not known to be clean.
    """
    if not isinstance(exc, Exception):
        return None, False
    if isinstance(exc, SqlgateError):
        cause = exc.__cause__
        if cause is None:  # sqlgate's own refusal (arguments, binding): nothing half-done
            return exc, not isinstance(exc, DatabaseUnavailable)
        error = exc
    else:
        cause = exc
        error = QueryTimeout(*_timeout_text(timeout_ms)) if isinstance(exc, TimeoutError) else \
            database.map_error(exc, timeout_ms)
    clean = not isinstance(error, DatabaseUnavailable) and database.driver.answered(cause)
    return error, clean


def _timeout_text(timeout_ms: int) -> tuple[str, str]:
    return (
        f"the call ran longer than {timeout_ms} ms; its statement was cancelled in the database",
        "make the query cheaper (filter earlier, add LIMIT, aggregate less) or pass a "
        "larger timeout_seconds if the policy allows it",
    )


@asynccontextmanager
async def guarded(lease: Lease, deadline: Deadline) -> AsyncIterator[None]:
    """Run one step on ``lease``'s connection under ``deadline``; map what goes wrong.

    On an error the server reported, the connection is left to its owner (still
    leased). Otherwise the statement is cancelled in the database and the connection
    discarded (``lease.alive`` becomes false) before the error or cancellation leaves.
    """
    try:
        async with asyncio.timeout_at(deadline.at):
            yield
    except BaseException as exc:
        error, clean = classify(lease.database, exc, deadline.timeout_ms)
        if not clean:
            await lease.discard(cancel=True)
        if error is None or error is exc:
            raise
        raise error from exc


@asynccontextmanager
async def call(database: Database, timeout_ms: int) -> AsyncIterator[Lease]:
    """One call on its own pooled connection: checkout, the caller's steps and the
    release, all under one deadline. The connection is released on success and on an
    error the server reported; otherwise cancelled in the database and discarded."""
    deadline = Deadline(timeout_ms)
    lease = await checkout(database, deadline)
    try:
        async with guarded(lease, deadline):
            yield lease
            await lease.release()  # MySQL's reset-on-return is a round trip: bounded too
    finally:
        if lease.alive:
            await lease.release()


async def run_sync(database: Database, fn: Any, *args: Any) -> Any:
    """``fn(sync_connection, *args)`` (a reflection: SQLAlchemy's inspector, catalog counts)
    on a pooled connection, under one deadline of the statement timeout, like a statement:
    a link gone silent answers TIMEOUT and the connection is discarded, instead of a call
    waiting for TCP to give up."""
    async with call(database, database.policy.statement_timeout_ms) as lease:
        result = await lease.sa_conn.run_sync(fn, *args)
        await lease.sa_conn.rollback()
        return result

