"""The event loop stays responsive while the worst legal query is checked (issue 12).

A heartbeat task ticks every 5 ms on the server's loop (in-memory MCP client: one loop
for client, server and heartbeat) while execute_query receives the costliest text the
default limits admit; the longest gap between ticks is the stall every other call saw.
"""

from __future__ import annotations

import asyncio
import time

from sqlgate import safety
from sqlgate.safety import parse
from sqlgate.safety.policy import Policy
from sqlgate.tools import checking
from tests.conftest import Backend, unique


def worst_legal_query(table: str, tokens: int = parse.DEFAULT_TOKENS) -> str:
    # Near the default token limit, in the costliest shape per token measured (a wide
    # select list of function calls; 9 tokens per item).
    count = tokens // 9 - 5
    return "SELECT " + ", ".join(f"coalesce(id, {i}) AS c{i}" for i in range(count)) + f" FROM {table}"


async def heartbeat(stalls: list[float], stop: asyncio.Event) -> None:
    """Tick every 5 ms until ``stop``; record how late each tick was (the loop's stalls)."""
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        stalls.append(now - last - 0.005)
        last = now


async def test_checking_the_worst_legal_query_does_not_stall_the_loop(sqlite_backend: Backend) -> None:
    table = unique("loop")
    await sqlite_backend.aexecute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)", f"INSERT INTO {table} VALUES (1)")
    sql = worst_legal_query(table)
    started = time.perf_counter()
    assert isinstance(safety.check_uncached(sql, "sqlite", Policy(allowed_tables=(table,))), safety.Verdict)
    inline_s = time.perf_counter() - started  # what the loop would stall for without the pool

    stalls: list[float] = []
    stop = asyncio.Event()

    try:
        async with sqlite_backend.client(allowed_tables=table) as client:
            warm = await client.call_tool("execute_query", {"query": worst_legal_query(table) + " WHERE id = 0"})
            assert not warm.is_error, warm.content  # the pool has started
            beat = asyncio.create_task(heartbeat(stalls, stop))
            await asyncio.sleep(0.05)
            stalls.clear()
            result = await client.call_tool("execute_query", {"query": sql})
            stop.set()
            await beat
        assert not result.is_error, result.content
        assert result.structured_content["row_count"] == 1
    finally:
        checking.shutdown()
    worst = max(stalls)
    print(f"inline check {inline_s * 1000:.0f} ms; longest loop stall with the pool {worst * 1000:.0f} ms")
    assert worst < 0.15, (worst, inline_s)


async def test_a_long_text_is_checked_off_the_loop_and_a_denial_never_parses_on_it(sqlite_backend: Backend) -> None:
    """With max_query_length raised, a long text is checked in the worker pool: a
    denial (here: past the token limit, a tokenizing pass of ~100,000 tokens) costs the
    loop nothing; the stall is bounded by what the loop itself still does."""
    table = unique("loopbig")
    await sqlite_backend.aexecute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    sql = f"SELECT id FROM {table} WHERE id IN (" + ",".join(["1"] * 60_000) + ")"
    stalls: list[float] = []
    stop = asyncio.Event()

    try:
        async with sqlite_backend.client(allowed_tables=table, max_query_length=1_000_000) as client:
            beat = asyncio.create_task(heartbeat(stalls, stop))
            result = await client.call_tool("execute_query", {"query": sql})
            stop.set()
            await beat
            assert result.is_error
            assert result.structured_content["error"]["code"] == "QUERY_TOO_COMPLEX"
            after = await client.call_tool("execute_query", {"query": f"SELECT count(*) FROM {table}"})
            assert not after.is_error
    finally:
        checking.shutdown()
    print(f"longest loop stall while a 120 kB text was denied: {max(stalls) * 1000:.0f} ms")
    assert max(stalls) < 0.15
