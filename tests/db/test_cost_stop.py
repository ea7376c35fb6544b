"""A timeout is a stop (issue 12): a PostgreSQL backend still active 2 s after the
cancel request is terminated (what a function that never checks for interrupts needs)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate.db.dialects import postgres
from sqlgate.db.engines import async_url
from tests.conftest import Backend


async def test_a_backend_still_active_after_the_grace_is_terminated(postgres_backend: Backend) -> None:
    engine = create_async_engine(async_url(postgres_backend.url))
    busy = await asyncpg.connect(postgres_backend.url.replace("postgresql://", "postgres://"))
    try:
        pid = busy.get_server_pid()
        running = asyncio.ensure_future(busy.fetchval("SELECT pg_sleep(30)"))
        await asyncio.sleep(0.3)  # no cancel request: the statement plays one that ignores it
        started = time.monotonic()
        await postgres._pg_ensure_ended(engine, pid)
        took = time.monotonic() - started
        try:
            await asyncio.wait_for(running, 5)
            raise AssertionError("the statement was not stopped")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError):
            pass  # terminated: "terminating connection due to administrator command"
        assert postgres.STOP_GRACE_S <= took < postgres.STOP_GRACE_S + 2
        gone = await postgres_backend.aexecute(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}")
        assert gone[0][0] == 0
    finally:
        busy.terminate()
        await engine.dispose()


async def test_a_backend_that_stopped_is_left_alone(postgres_backend: Backend) -> None:
    engine = create_async_engine(async_url(postgres_backend.url))
    idle = await asyncpg.connect(postgres_backend.url.replace("postgresql://", "postgres://"))
    try:
        started = time.monotonic()
        await postgres._pg_ensure_ended(engine, idle.get_server_pid())
        assert time.monotonic() - started < 1.5
        assert await idle.fetchval("SELECT 1") == 1  # not terminated
    finally:
        await idle.close()
        await engine.dispose()
