"""transaction_manager through a real MCP client: batch, dry run, isolation, interactive."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Backend, unique

pytestmark = pytest.mark.anyio

DDL = "CREATE TABLE {t} (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, qty INTEGER NOT NULL)"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def make_table(backend: Backend) -> str:
    table = unique("tm")
    await backend.aexecute(DDL.format(t=table), f"INSERT INTO {table} VALUES (1, 'a', 10), (2, 'b', 20)")
    return table


async def snapshot(backend: Backend, table: str) -> list[tuple[Any, ...]]:
    """The table as a separate connection sees it."""
    return [tuple(r) for r in await backend.aexecute(f"SELECT id, name, qty FROM {table} ORDER BY id")]


def op(query: str, fetch_mode: str = "all", **parameters: Any) -> dict[str, Any]:
    return {"query": query, "parameters": parameters or None, "fetch_mode": fetch_mode}


def error(result: Any) -> dict[str, Any]:
    assert result.is_error, result
    return dict(result.structured_content["error"])


async def tm(client: Any, **arguments: Any) -> Any:
    return await client.call_tool("transaction_manager", arguments)


async def pool_checked_out(client: Any) -> int:
    report = (await client.call_tool("health_check", {"include_stats": True})).structured_content
    return int(report["databases"][0]["pool"]["checked_out"])


# ------------------------------------------------------------------------ batch mode


async def test_batch_commits_every_operation(backend: Backend) -> None:
    table = await make_table(backend)
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await tm(client, operations=[
            op(f"INSERT INTO {table} (id, name, qty) VALUES (:id, :name, :qty)", id=3, name="c", qty=30),
            op(f"UPDATE {table} SET qty = qty - 5 WHERE id = :id", id=1),
            op(f"SELECT sum(qty) AS total FROM {table}", "scalar"),
        ])
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["committed"] is True
    assert [r.get("rows_affected") for r in data["results"][:2]] == [1, 1]
    assert data["results"][2]["value"] == 55
    assert await snapshot(backend, table) == [(1, "a", 5), (2, "b", 20), (3, "c", 30)]


async def test_failure_in_third_operation_leaves_the_table_as_before(backend: Backend) -> None:
    table = await make_table(backend)
    before = await snapshot(backend, table)
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await tm(client, operations=[
            op(f"INSERT INTO {table} (id, name, qty) VALUES (3, 'c', 30)"),
            op(f"UPDATE {table} SET qty = 0 WHERE id = 1"),
            op(f"INSERT INTO {table} (id, name, qty) VALUES (2, 'duplicate', 0)"),
            op(f"DELETE FROM {table} WHERE id = 2"),
        ])
    body = error(result)
    assert body["code"] == "CONSTRAINT_VIOLATION"
    assert (body["failed_operation"], body["committed"]) == (2, False)
    assert "operations[2]" in body["message"]
    assert await snapshot(backend, table) == before


async def test_every_operation_is_validated_before_the_first_runs(backend: Backend) -> None:
    table = await make_table(backend)
    before = await snapshot(backend, table)
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        refused = await tm(client, operations=[
            op(f"INSERT INTO {table} (id, name, qty) VALUES (3, 'c', 30)"),
            op(f"DROP TABLE {table}"),
        ])
        missing_param = await tm(client, operations=[
            op(f"INSERT INTO {table} (id, name, qty) VALUES (4, 'd', 40)"),
            op(f"UPDATE {table} SET qty = :qty WHERE id = 1"),
        ])
        empty = await tm(client, operations=[])
    assert (error(refused)["code"], error(refused)["failed_operation"]) == ("STATEMENT_NOT_ALLOWED", 1)
    assert (error(missing_param)["code"], error(missing_param)["failed_operation"]) == ("INVALID_ARGUMENT", 1)
    assert error(empty)["code"] == "INVALID_ARGUMENT"
    assert await snapshot(backend, table) == before


async def test_dry_run_shows_the_effect_then_rolls_back(backend: Backend) -> None:
    table = await make_table(backend)
    before = await snapshot(backend, table)
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        result = await tm(client, dry_run=True, operations=[
            op(f"DELETE FROM {table} WHERE qty > :q", q=15),
            op(f"SELECT count(*) FROM {table}", "scalar"),
        ])
    assert not result.is_error, result.content
    data = result.structured_content
    assert (data["committed"], data["dry_run"]) == (False, True)
    assert data["results"][0]["rows_affected"] == 1 and data["results"][1]["value"] == 1
    assert await snapshot(backend, table) == before


async def test_read_only_batch_of_selects_is_a_snapshot_and_writes_are_refused(backend: Backend) -> None:
    table = await make_table(backend)
    async with backend.client(mode="read_only", allowed_tables=table) as client:
        reads = await tm(client, operations=[
            op(f"SELECT count(*) FROM {table}", "scalar"), op(f"SELECT max(qty) FROM {table}", "scalar"),
        ])
        writes = await tm(client, operations=[
            op(f"SELECT count(*) FROM {table}"), op(f"UPDATE {table} SET qty = 1 WHERE id = 1"),
        ])
    assert not reads.is_error, reads.content
    assert [r["value"] for r in reads.structured_content["results"]] == [2, 20]
    expected = None if backend.name == "sqlite" else "repeatable_read"
    assert reads.structured_content.get("isolation_level") == expected
    assert (error(writes)["code"], error(writes)["failed_operation"]) == ("WRITE_NOT_ALLOWED", 1)


# ------------------------------------------------------------------------ isolation

PG_LEVELS = {
    "read_committed": "read committed",
    "repeatable_read": "repeatable read",
    "serializable": "serializable",
    "read_uncommitted": "read uncommitted",
}


@pytest.mark.parametrize("level", list(PG_LEVELS))
async def test_postgres_isolation_level_is_applied(postgres_backend: Backend, level: str) -> None:
    table = await make_table(postgres_backend)
    # current_setting is off the function allowlist (it reads server paths too): lifted here.
    async with postgres_backend.client(mode="read_write", allowed_tables=table,
                                       allowed_functions="current_setting") as client:
        result = await tm(client, isolation_level=level, operations=[
            op("SELECT current_setting('transaction_isolation')", "scalar"),
        ])
    assert not result.is_error, result.content
    assert result.structured_content["results"][0]["value"] == PG_LEVELS[level]


@pytest.mark.parametrize("level", list(PG_LEVELS))
async def test_mysql_isolation_level_is_applied(mysql_backend: Backend, level: str) -> None:
    # MariaDB's @@tx_isolation shows the session default, not SET TRANSACTION's level;
    # the server's own view of the open transaction (innodb_trx) is read from outside.
    table = await make_table(mysql_backend)
    async with mysql_backend.client(mode="read_write", allowed_tables=table,
                                    allowed_functions="connection_id") as client:  # off the allowlist
        begun = await tm(client, action="begin", isolation_level=level, operations=[
            # A write: InnoDB lists a transaction that only read in innodb_trx only sometimes.
            op("SELECT CONNECTION_ID()", "scalar"), op(f"UPDATE {table} SET qty = qty + 1 WHERE id = 1"),
        ])
        assert not begun.is_error, begun.content
        thread = begun.structured_content["results"][0]["value"]
        seen: list[Any] = []
        for _ in range(20):
            # innodb_trx is a cache InnoDB refreshes only when it was not read for 0.1 s.
            await asyncio.sleep(0.15)
            seen = await mysql_backend.aexecute(
                "SELECT trx_isolation_level FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = :t",
                params={"t": thread},
            )
            if seen:
                break
        await tm(client, action="rollback", transaction_id=begun.structured_content["transaction_id"])
    assert seen and seen[0][0] == level.upper().replace("_", " ")


async def test_repeatable_read_does_not_see_a_concurrent_commit(backend: Backend) -> None:
    if backend.name == "sqlite":
        pytest.skip("SQLite has only serializable transactions; see the sqlite test")
    table = await make_table(backend)
    counts = {}
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        for level in ("repeatable_read", "read_committed"):
            begun = await tm(client, action="begin", isolation_level=level,
                             operations=[op(f"SELECT count(*) FROM {table}", "scalar")])
            txid = begun.structured_content["transaction_id"]
            await backend.aexecute(f"INSERT INTO {table} VALUES ({100 + len(counts)}, 'x', 1)")
            again = await tm(client, action="execute", transaction_id=txid,
                             operations=[op(f"SELECT count(*) FROM {table}", "scalar")])
            counts[level] = (begun.structured_content["results"][0]["value"],
                             again.structured_content["results"][0]["value"])
            await tm(client, action="commit", transaction_id=txid)
    assert counts == {"repeatable_read": (2, 2), "read_committed": (3, 4)}


async def test_sqlite_supports_serializable_only(sqlite_backend: Backend) -> None:
    table = await make_table(sqlite_backend)
    async with sqlite_backend.client(mode="read_write", allowed_tables=table) as client:
        ok = await tm(client, isolation_level="serializable",
                      operations=[op(f"UPDATE {table} SET qty = 11 WHERE id = 1")])
        refused = await tm(client, isolation_level="repeatable_read",
                           operations=[op(f"UPDATE {table} SET qty = 12 WHERE id = 1")])
    assert not ok.is_error, ok.content
    assert error(refused)["code"] == "INVALID_ARGUMENT" and "serializable" in error(refused)["hint"]
    assert (await snapshot(sqlite_backend, table))[0] == (1, "a", 11)


# ---------------------------------------------------------------------- interactive


async def test_interactive_commit(backend: Backend) -> None:
    table = await make_table(backend)
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        begun = await tm(client, action="begin")
        data = begun.structured_content
        assert not begun.is_error and len(data["transaction_id"]) == 32
        assert 0 < data["expires_in_seconds"] <= 30
        txid = data["transaction_id"]
        step = await tm(client, action="execute", transaction_id=txid, operations=[
            op(f"INSERT INTO {table} VALUES (3, 'c', 30)"), op(f"SELECT count(*) FROM {table}", "scalar"),
        ])
        assert step.structured_content["results"][1]["value"] == 3
        assert len(await snapshot(backend, table)) == 2  # not visible outside before commit
        done = await tm(client, action="commit", transaction_id=txid)
        again = await tm(client, action="commit", transaction_id=txid)
    assert done.structured_content["committed"] is True
    assert error(again)["code"] == "INVALID_ARGUMENT" and "committed" in error(again)["message"]
    assert len(await snapshot(backend, table)) == 3


async def test_interactive_rollback_and_failed_operation(backend: Backend) -> None:
    table = await make_table(backend)
    before = await snapshot(backend, table)
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        txid = (await tm(client, action="begin")).structured_content["transaction_id"]
        await tm(client, action="execute", transaction_id=txid,
                 operations=[op(f"DELETE FROM {table} WHERE id = 1")])
        rolled = await tm(client, action="rollback", transaction_id=txid)
        assert rolled.structured_content["committed"] is False
        second = (await tm(client, action="begin")).structured_content["transaction_id"]
        await tm(client, action="execute", transaction_id=second,
                 operations=[op(f"DELETE FROM {table} WHERE id = 1")])
        failed = await tm(client, action="execute", transaction_id=second,
                          operations=[op(f"INSERT INTO {table} VALUES (2, 'dup', 0)")])
        after_failure = await tm(client, action="commit", transaction_id=second)
        idle = await pool_checked_out(client)
    assert (error(failed)["code"], error(failed)["failed_operation"]) == ("CONSTRAINT_VIOLATION", 0)
    assert "rolled back after a failed operation" in error(after_failure)["message"]
    assert idle == 0
    assert await snapshot(backend, table) == before


async def test_idle_transaction_expires_and_returns_its_connection(backend: Backend) -> None:
    table = await make_table(backend)
    before = await snapshot(backend, table)
    async with backend.client(
        mode="read_write", allowed_tables=table, transaction_idle_timeout_s=0.5
    ) as client:
        idle_before = await pool_checked_out(client)
        begun = await tm(client, action="begin", operations=[op(f"DELETE FROM {table} WHERE id = 2")])
        assert begun.structured_content["expires_in_seconds"] <= 0.5
        held = await pool_checked_out(client)
        for _ in range(100):  # the reaper runs in the background; no call needed
            await asyncio.sleep(0.05)
            if await pool_checked_out(client) == idle_before:
                break
        after = await pool_checked_out(client)
        late = await tm(client, action="execute", transaction_id=begun.structured_content["transaction_id"],
                        operations=[op(f"SELECT count(*) FROM {table}")])
    assert (held, after) == (idle_before + 1, idle_before)
    assert error(late)["code"] == "INVALID_ARGUMENT" and "expired" in error(late)["message"]
    assert await snapshot(backend, table) == before


async def test_unknown_id_and_cap_on_open_transactions(backend: Backend) -> None:
    table = await make_table(backend)
    async with backend.client(mode="read_write", allowed_tables=table, max_open_transactions=2) as client:
        unknown = await tm(client, action="commit", transaction_id="0" * 32)
        no_id = await tm(client, action="execute", operations=[op(f"SELECT 1 FROM {table}")])
        first = await tm(client, action="begin")
        second = await tm(client, action="begin")
        third = await tm(client, action="begin")
        await tm(client, action="rollback", transaction_id=first.structured_content["transaction_id"])
        fourth = await tm(client, action="begin")
        await tm(client, action="rollback", transaction_id=second.structured_content["transaction_id"])
        await tm(client, action="rollback", transaction_id=fourth.structured_content["transaction_id"])
        idle = await pool_checked_out(client)
    assert error(unknown)["code"] == "INVALID_ARGUMENT" and "unknown transaction" in error(unknown)["message"]
    assert error(no_id)["code"] == "INVALID_ARGUMENT"
    assert error(third)["code"] == "TOO_MANY_TRANSACTIONS"
    assert not fourth.is_error
    assert idle == 0


async def test_open_transaction_is_rolled_back_at_shutdown(backend: Backend) -> None:
    table = await make_table(backend)
    before = await snapshot(backend, table)
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        begun = await tm(client, action="begin", operations=[op(f"DELETE FROM {table} WHERE id = 1")])
        assert not begun.is_error, begun.content
    assert await snapshot(backend, table) == before


# ------------------------------------------------------------ ownership and lifetime (issue 13)


async def test_max_lifetime_applies_whatever_the_keep_alives(backend: Backend) -> None:
    """A call every 0.3 s keeps an idle limit of 1 s at bay, not the maximum lifetime of 1.5 s."""
    table = await make_table(backend)
    async with backend.client(
        mode="read_write", allowed_tables=table, transaction_idle_timeout_s=1, transaction_max_lifetime_s=1.5
    ) as client:
        begun = await tm(client, action="begin", operations=[op(f"UPDATE {table} SET qty = 0 WHERE id = 1")])
        txid = begun.structured_content["transaction_id"]
        started = asyncio.get_running_loop().time()
        last = None
        while asyncio.get_running_loop().time() - started < 6:
            last = await tm(client, action="execute", transaction_id=txid, operations=[op(f"SELECT 1 FROM {table}")])
            if last.is_error:
                break
            await asyncio.sleep(0.3)
        lived = asyncio.get_running_loop().time() - started
        idle = await pool_checked_out(client)
    assert last is not None and error(last)["code"] == "INVALID_ARGUMENT"
    assert "maximum lifetime" in error(last)["message"]
    assert 1.0 <= lived < 5  # generous: the machine is shared
    assert idle == 0
    assert (await snapshot(backend, table))[0][2] == 10  # rolled back


async def test_one_session_cannot_take_every_slot(backend: Backend) -> None:
    from sqlgate.db.engines import open_databases
    from sqlgate.db.interactive import Owner, TransactionRegistry

    table = await make_table(backend)
    settings = backend.settings(mode="read_write", allowed_tables=table)
    databases = await open_databases(settings)
    registry = TransactionRegistry(30, 4, max_per_session=2)
    try:
        db = databases.get(None)
        a, b = Owner(None, "sse:a"), Owner(None, "sse:b")
        first = await registry.begin(db, isolation=None, timeout_ms=5000, owner=a)
        await registry.begin(db, isolation=None, timeout_ms=5000, owner=a)
        from sqlgate.errors import SqlgateError

        with pytest.raises(SqlgateError) as refused:
            await registry.begin(db, isolation=None, timeout_ms=5000, owner=a)
        assert refused.value.code == "TOO_MANY_TRANSACTIONS" and "per session" in refused.value.message
        other = await registry.begin(db, isolation=None, timeout_ms=5000, owner=b)  # others still get one
        with pytest.raises(SqlgateError) as unknown:  # and cannot use a's
            await registry.acquire(first.id, b)
        assert "unknown transaction" in unknown.value.message
        assert await registry.end_session("sse:a") == 2
        assert len(registry) == 1 and registry.owned_by(b) == [other]
        with pytest.raises(SqlgateError) as ended:
            await registry.acquire(first.id, a)
        assert "session ended" in ended.value.message
    finally:
        await registry.close()
        await databases.close()
