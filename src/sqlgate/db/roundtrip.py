"""The write round trip of ``health_check(test_operations=true)`` (the SQL: ``Dialect.round_trip``).

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
from typing import TYPE_CHECKING

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
            persisted = await database.driver.round_trip(conn, name, steps, database.policy.read_only)
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


def _message(exc: BaseException) -> str:
    if isinstance(exc, SqlgateError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return mask_secrets(text)
