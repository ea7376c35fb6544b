"""The execution boundary under faults, on real PostgreSQL and MariaDB, through a real
MCP client: network faults (a TCP proxy in front of the server), a client that cancels
or disconnects, a killed backend. Every call answers within its timeout + 1 s; every
cancelled statement stops in the database within 2 s; the pool is whole afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import Backend
from tests.db.proxy import Proxy

KINDS = ("postgres", "mysql")
SLEEP = {"postgres": "SELECT pg_sleep({s})", "mysql": "SELECT SLEEP({s})"}
SLEEP_FUNCTION = {"postgres": "pg_sleep", "mysql": "sleep"}
# Statements of this test session's database still running, other than the probe itself.
RUNNING = {
    "postgres": "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE '%pg_sleep%'",
    "mysql": "SELECT count(*) FROM information_schema.processlist WHERE db = DATABASE() "
    "AND id <> CONNECTION_ID() AND info LIKE '%SLEEP(%'",
}
RUNNING_ID = {
    "postgres": "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE '%pg_sleep%'",
    "mysql": "SELECT id FROM information_schema.processlist WHERE db = DATABASE() "
    "AND id <> CONNECTION_ID() AND info LIKE '%SLEEP(%'",
}
KILL = {"postgres": "SELECT pg_terminate_backend({id})", "mysql": "KILL {id}"}


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.getfixturevalue(f"{request.param}_backend")
    return backend


@pytest.fixture
def proxy(server: Backend) -> Iterator[Proxy]:
    target = urlsplit(server.url)
    running = Proxy(target.hostname or "127.0.0.1", target.port or (5432 if server.name == "postgres" else 3306))
    yield running.start()
    running.stop()


def settings(server: Backend, **extra: Any) -> dict[str, Any]:
    return {"allowed_functions": SLEEP_FUNCTION[server.name], "log_level": "WARNING", **extra}


def error(result: Any) -> dict[str, Any]:
    assert result.is_error, result.content
    return dict(result.structured_content["error"])


async def query(client: Any, sql: str, timeout_s: float | None = None) -> tuple[Any, float]:
    args: dict[str, Any] = {"query": sql}
    if timeout_s is not None:
        args["timeout_seconds"] = timeout_s
    started = time.monotonic()
    result = await client.call_tool("execute_query", args)
    return result, time.monotonic() - started


async def running(server: Backend) -> int:
    return int((await server.aexecute(RUNNING[server.name]))[0][0])


async def wait_running(server: Backend) -> None:
    for _ in range(100):
        if await running(server):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the long statement never started")


async def gone_within(server: Backend, seconds: float) -> bool:
    """True when no sleeping statement of this session's database is left within ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not await running(server):
            return True
        await asyncio.sleep(0.1)
    return not await running(server)


async def checked_out(client: Any) -> int:
    """Connections checked out of the pool once the clean-ups (bounded, in the background
    after the call has answered) are done: 0 means the pool is whole."""
    for _ in range(20):
        report = (await client.call_tool("health_check", {"include_stats": True})).structured_content
        count = int(report["databases"][0]["pool"]["checked_out"])
        if count == 0:
            break
        await asyncio.sleep(0.1)
    return count


# ------------------------------------------------------------------ network faults


async def test_black_hole_answers_within_the_timeout_plus_one_second(server: Backend, proxy: Proxy) -> None:
    async with server.client(database_url=proxy.url(server.url), **settings(server)) as client:
        warm, _ = await query(client, "SELECT 1")
        assert not warm.is_error, warm.content
        proxy.mode = "blackhole"
        # A pooled connection (pre-ping hangs) and, concurrently, a fresh connect (hangs).
        (pooled, pooled_s), (fresh, fresh_s) = await asyncio.gather(
            query(client, "SELECT 1", timeout_s=2), query(client, "SELECT 2", timeout_s=2)
        )
        proxy.mode = "pass"
        after, _ = await query(client, "SELECT 1")
    for result, seconds in ((pooled, pooled_s), (fresh, fresh_s)):
        assert error(result)["code"] in ("TIMEOUT", "DB_UNAVAILABLE")
        assert seconds < 3.0
    assert not after.is_error, after.content


async def test_latency_answers_within_the_timeout_plus_one_second(server: Backend, proxy: Proxy) -> None:
    async with server.client(database_url=proxy.url(server.url), **settings(server)) as client:
        warm, _ = await query(client, "SELECT 1")
        assert not warm.is_error, warm.content
        proxy.mode, proxy.latency_s = "latency", 0.6
        result, seconds = await query(client, SLEEP[server.name].format(s=1.5), timeout_s=2)
        proxy.mode = "pass"
        assert error(result)["code"] in ("TIMEOUT", "DB_UNAVAILABLE")
        assert seconds < 3.0
        assert await gone_within(server, 2.0)
        after, _ = await query(client, "SELECT 1")
        assert not after.is_error, after.content
        assert await checked_out(client) == 0


async def test_reset_mid_query_is_unavailable_and_retryable_then_the_next_call_works(
    server: Backend, proxy: Proxy
) -> None:
    async with server.client(database_url=proxy.url(server.url), **settings(server)) as client:
        call = asyncio.create_task(query(client, SLEEP[server.name].format(s=5), timeout_s=10))
        await wait_running(server)
        proxy.reset()
        result, seconds = await call
        body = error(result)
        assert (body["code"], body["retryable"]) == ("DB_UNAVAILABLE", True)
        assert seconds < 3.0
        after, _ = await query(client, "SELECT 1")
        assert not after.is_error, after.content
        assert await checked_out(client) == 0
    assert await gone_within(server, 2.0)  # the reset statement was cancelled in the database


# -------------------------------------------------- the caller goes away mid-statement


async def test_client_cancel_stops_the_statement_in_the_database(server: Backend) -> None:
    async with server.client(**settings(server)) as client:
        call = asyncio.create_task(query(client, SLEEP[server.name].format(s=20)))
        await wait_running(server)
        call.cancel()  # the SDK sends notifications/cancelled for the abandoned request
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await gone_within(server, 2.0)
        after, _ = await query(client, "SELECT 1")
        assert not after.is_error, after.content
        assert await checked_out(client) == 0


async def test_client_disconnect_stops_the_statement_in_the_database(server: Backend) -> None:
    async def disconnect_mid_query() -> None:
        async with server.client(**settings(server)) as client:
            await client.call_tool("execute_query", {"query": SLEEP[server.name].format(s=20)})

    session = asyncio.create_task(disconnect_mid_query())
    await wait_running(server)
    session.cancel()  # the session ends: its in-flight handler is cancelled
    with pytest.raises(asyncio.CancelledError):
        await session
    assert await gone_within(server, 2.0)


async def test_timeout_stops_the_statement_and_keeps_the_pool_whole(server: Backend) -> None:
    async with server.client(**settings(server)) as client:
        result, seconds = await query(client, SLEEP[server.name].format(s=5), timeout_s=1)
        assert error(result)["code"] == "TIMEOUT"
        assert seconds < 2.0
        assert await gone_within(server, 2.0)
        assert await checked_out(client) == 0


# ------------------------------------------------------------- the backend is killed


async def test_killed_backend_is_unavailable_and_retryable(server: Backend) -> None:
    async with server.client(**settings(server)) as client:
        call = asyncio.create_task(query(client, SLEEP[server.name].format(s=10)))
        await wait_running(server)
        [(backend_id,)] = await server.aexecute(RUNNING_ID[server.name])
        await server.aexecute(KILL[server.name].format(id=int(backend_id)))
        result, seconds = await call
        body = error(result)
        assert (body["code"], body["retryable"]) == ("DB_UNAVAILABLE", True)
        assert "fix the SQL" not in body["hint"]
        after, _ = await query(client, "SELECT 1")
        assert not after.is_error, after.content
        assert await checked_out(client) == 0


# --------------------------------------- a pooled connection dies while it sits idle

# The other connections to this test's database (the server's pool), not the probe's own.
POOLED = {
    "postgres": "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
    "mysql": "SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()",
}


async def kill_pooled(server: Backend) -> int:
    ids = [int(row[0]) for row in await server.aexecute(POOLED[server.name])]
    for backend_id in ids:
        await server.aexecute(KILL[server.name].format(id=backend_id))
    await asyncio.sleep(0.2)  # the server closes the sockets
    return len(ids)


@pytest.mark.parametrize("timeout_s", [None, 7], ids=["plain-read", "transaction"])
async def test_a_pooled_connection_the_server_closed_while_idle_is_replaced(
    server: Backend, timeout_s: float | None
) -> None:
    """A connection used moments ago is handed out without a liveness round trip; the
    driver already knows when the server closed it (KILL, a restart, an idle timeout),
    and it is replaced before the call runs: no error, no second run of the statement.
    (A timeout other than the default takes the transaction path, db/guard.py.)"""
    async with server.client(**settings(server)) as client:
        first, _ = await query(client, "SELECT 1 AS one")
        assert not first.is_error, first.content
        assert await kill_pooled(server) >= 1
        after, _ = await query(client, "SELECT 2 AS two", timeout_s)
        assert not after.is_error, after.content
        assert after.structured_content["rows"] == [[2]]
        assert await checked_out(client) == 0


@pytest.mark.parametrize("timeout_s", [None, 7], ids=["plain-read", "transaction"])
async def test_a_pooled_connection_reset_on_the_network_while_idle_is_replaced(
    server: Backend, proxy: Proxy, timeout_s: float | None
) -> None:
    """The link of an idle pooled connection is reset (RST, as a load balancer or a
    restarted proxy does): the driver has seen it, so the next call gets a new connection
    instead of an error."""
    async with server.client(database_url=proxy.url(server.url), **settings(server)) as client:
        first, _ = await query(client, "SELECT 1 AS one")
        assert not first.is_error, first.content
        proxy.reset()
        await asyncio.sleep(0.2)
        after, _ = await query(client, "SELECT 2 AS two", timeout_s)
        assert not after.is_error, after.content
        assert after.structured_content["rows"] == [[2]]
