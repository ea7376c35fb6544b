"""The write round trip of ``health_check(test_operations=true)``, per dialect.

Create, insert, select, update, delete on a TEMP table inside a transaction that is
rolled back, then ask the database whether anything survived. It is allowed on read-only
databases because nothing persists: the transaction is rolled back, the table is
temporary, and the connection is discarded afterwards, so not even the session keeps
anything. Only sqlgate's own fixed SQL runs here; the table name is generated.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from sqlgate.errors import SqlgateError
from sqlgate.logging import mask_secrets

if TYPE_CHECKING:
    from sqlgate.db.engines import Database


class RoundTrip(BaseModel):
    ok: bool
    steps: list[str]
    persisted: bool | None = None  # false: verified that nothing was left behind
    error: str | None = None
    duration_ms: float | None = None


async def round_trip(database: Database, timeout_s: float) -> RoundTrip:
    """Run the round trip on a pooled connection; never raises."""
    name = f"sqlgate_health_{secrets.token_hex(4)}"  # generated here, never from input
    steps: list[str] = []
    started = time.perf_counter()
    sa_conn, _raw, conn = None, None, None
    try:
        async with asyncio.timeout(timeout_s):
            sa_conn, _raw, conn = await database.checkout()
            persisted = await _ROUND_TRIPS[database.driver.name](conn, name, steps, database.policy.read_only)
        ok = not persisted and steps[-1:] == ["rollback"]
        return RoundTrip(
            ok=ok, steps=steps, persisted=persisted,
            error=None if ok else "the temporary table outlived the rolled-back transaction",
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
    except Exception as exc:  # noqa: BLE001 - reported in the result
        step = "connect" if conn is None else f"after {steps[-1] if steps else 'begin'}"
        return RoundTrip(ok=False, steps=steps, error=f"{step}: {_message(exc)}",
                         duration_ms=round((time.perf_counter() - started) * 1000, 2))
    finally:
        if sa_conn is not None:
            # Session state (temporary tables, PRAGMA, transaction mode) goes with it.
            try:
                await sa_conn.invalidate()
            finally:
                await sa_conn.close()


async def _pg_round_trip(conn: Any, name: str, steps: list[str], read_only: bool) -> bool:
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


async def _mysql_round_trip(conn: Any, name: str, steps: list[str], read_only: bool) -> bool:
    async with conn.cursor() as cur:
        # START TRANSACTION READ WRITE overrides the read-only session default.
        await cur.execute("START TRANSACTION READ WRITE")
        # No implicit commit for TEMPORARY tables; the rows below are rolled back.
        await cur.execute(f"CREATE TEMPORARY TABLE {name} (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB")
        steps.append("create")
        await cur.execute(f"INSERT INTO {name} (id, note) VALUES (1, 'a'), (2, 'b')")
        steps.append("insert")
        await cur.execute(f"SELECT COUNT(*) FROM {name}")
        if (await cur.fetchone())[0] != 2:
            raise RuntimeError("select did not see the inserted rows")
        steps.append("select")
        if await cur.execute(f"UPDATE {name} SET note = 'c' WHERE id = 1") != 1:
            raise RuntimeError("update did not change one row")
        steps.append("update")
        if await cur.execute(f"DELETE FROM {name} WHERE id = 2") != 1:
            raise RuntimeError("delete did not remove one row")
        steps.append("delete")
        await conn.rollback()
        steps.append("rollback")
        # A MySQL temporary table lives until the session ends (the connection is
        # discarded next); what must not persist are the rows.
        await cur.execute(f"SELECT COUNT(*) FROM {name}")
        leftover = (await cur.fetchone())[0]
        await conn.rollback()
        await cur.execute("START TRANSACTION READ WRITE")
        await cur.execute(f"DROP TEMPORARY TABLE {name}")  # not transactional, no implicit commit
        await conn.rollback()
    return bool(leftover)


async def _sqlite_round_trip(conn: Any, name: str, steps: list[str], read_only: bool) -> bool:
    if read_only:
        await conn.execute("PRAGMA query_only = OFF")
    try:
        await conn.execute("BEGIN")
        await conn.execute(f"CREATE TEMP TABLE {name} (id INTEGER PRIMARY KEY, note TEXT)")
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
        cur = await conn.execute("SELECT COUNT(*) FROM sqlite_temp_master WHERE name = ?", (name,))
        return bool((await cur.fetchone())[0])
    finally:
        if read_only:
            await conn.execute("PRAGMA query_only = ON")


_ROUND_TRIPS = {"postgresql": _pg_round_trip, "mysql": _mysql_round_trip, "sqlite": _sqlite_round_trip}


def _message(exc: BaseException) -> str:
    if isinstance(exc, SqlgateError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return mask_secrets(text)
