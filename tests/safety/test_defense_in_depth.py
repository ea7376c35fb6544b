"""The second wall: a read_only database refuses writes even when the validator is bypassed.

Each test forges what the validator would never hand out for a read_only database — a
verdict for a write — and runs it through the guarded executor. The database itself
must refuse it (read-only transactions / session defaults / PRAGMA query_only), and the
refusal reaches the caller as WRITE_NOT_ALLOWED. Nothing may persist.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from sqlgate import safety
from sqlgate.db import guard
from sqlgate.db.engines import open_databases
from sqlgate.errors import SqlgateError
from sqlgate.safety.policy import Mode
from tests.conftest import Backend, unique

WRITES = {
    "insert": "INSERT INTO {t} (id, note) VALUES (99, 'forged')",
    "update": "UPDATE {t} SET note = 'forged' WHERE id = 1",
    "delete": "DELETE FROM {t} WHERE id = 1",
}


async def _table(backend: Backend) -> str:
    table = unique("sfdd")
    await backend.aexecute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, note VARCHAR(20))",
        f"INSERT INTO {table} (id, note) VALUES (1, 'original')",
    )
    return table


async def _unchanged(backend: Backend, table: str) -> None:
    rows = await backend.aexecute(f"SELECT id, note FROM {table} ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, "original")]


def _forged(sql: str, database: object) -> safety.Verdict:
    """What check() would return under read_write: the bypass a bug would open."""
    policy = database.policy.model_copy(update={"mode": Mode.READ_WRITE})  # type: ignore[attr-defined]
    return safety.check(sql, database.dialect, policy)  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", sorted(WRITES))
async def test_read_only_database_refuses_forged_write_verdict(backend: Backend, kind: str) -> None:
    table = await _table(backend)
    databases = await open_databases(backend.settings(allowed_tables=table))
    try:
        database = databases.default
        assert database.policy.read_only
        verdict = _forged(WRITES[kind].format(t=table), database)
        with pytest.raises(SqlgateError) as refused:
            await guard.execute(database, verdict, {})
        assert refused.value.code == "WRITE_NOT_ALLOWED", refused.value.message
        # The explicit transaction API too.
        with pytest.raises(SqlgateError) as refused_tx:
            async with guard.GuardedTransaction(database) as tx:
                await tx.run(verdict, {})
        assert refused_tx.value.code == "WRITE_NOT_ALLOWED", refused_tx.value.message
    finally:
        await databases.close()
    await _unchanged(backend, table)


async def test_write_disguised_as_read_is_refused_on_the_fast_path(backend: Backend) -> None:
    """A forged verdict that *claims* to be a plain read takes the no-transaction fast
    path; the session defaults set at connect must still refuse the write."""
    table = await _table(backend)
    databases = await open_databases(backend.settings(allowed_tables=table))
    try:
        database = databases.default
        write = _forged(WRITES["update"].format(t=table), database)
        disguised = replace(write, statement_kinds=("select",), writes=False)
        with pytest.raises(SqlgateError) as refused:
            await guard.execute(database, disguised, {})
        assert refused.value.code == "WRITE_NOT_ALLOWED", refused.value.message
    finally:
        await databases.close()
    await _unchanged(backend, table)


async def test_forged_ddl_verdict_is_refused(backend: Backend) -> None:
    """DDL never passes check(); hand-built, it still meets a read-only database."""
    import sqlglot

    table = await _table(backend)
    databases = await open_databases(backend.settings(allowed_tables=table))
    try:
        database = databases.default
        statement = sqlglot.parse_one(f"DROP TABLE {table}", read=database.dialect)
        forged = safety.Verdict(
            dialect=database.dialect, statement_kinds=("delete",), tables=(table,), writes=True,
            sql=f"DROP TABLE {table}", parameters=(), expressions=(statement,),
        )
        with pytest.raises(SqlgateError) as refused:
            await guard.execute(database, forged, {})
        assert refused.value.code == "WRITE_NOT_ALLOWED", refused.value.message
    finally:
        await databases.close()
    await _unchanged(backend, table)
