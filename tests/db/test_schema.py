"""Reflected structure of whitelisted tables, on all three databases."""

from __future__ import annotations

import pytest

from sqlgate.db import schema
from sqlgate.db.engines import open_databases
from sqlgate.errors import PolicyViolation
from tests.conftest import Backend, unique


@pytest.mark.asyncio
async def test_table_info(backend: Backend) -> None:
    await backend.aexecute(
        "DROP TABLE IF EXISTS reflect_child",
        "DROP TABLE IF EXISTS reflect_parent",
        "CREATE TABLE reflect_parent (id INTEGER PRIMARY KEY, code VARCHAR(10) NOT NULL UNIQUE)",
        "CREATE TABLE reflect_child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES reflect_parent(id), "
        "note VARCHAR(50))",
        "CREATE INDEX ix_child_parent ON reflect_child (parent_id)",
    )
    databases = await open_databases(backend.settings(allowed_tables="reflect_parent,reflect_child"))
    try:
        db = databases.default
        parent = await schema.table_info(db, "reflect_parent")
        child = await schema.table_info(db, "reflect_child")
        assert parent.primary_key == ("id",)
        assert ("code",) in parent.unique_constraints or any(
            i.unique and i.columns == ("code",) for i in parent.indexes
        )
        assert parent.column("CODE") is not None and parent.column("code").nullable is False
        assert any(i.columns == ("parent_id",) for i in child.indexes)
        assert child.foreign_keys[0].referred_table == "reflect_parent"
        assert await schema.table_info(db, "reflect_child") is child  # cached
        with pytest.raises(PolicyViolation) as denied:
            await schema.table_info(db, "people_not_listed")
        assert denied.value.code == "TABLE_NOT_ALLOWED"
    finally:
        await databases.close()


async def test_a_denied_columns_entry_misnaming_a_readable_table_stops_start_up(sqlite_backend: Backend) -> None:
    """`people.ssn` for the table `peoples` would protect nothing (the entry names no table)
    and leave peoples.ssn readable: a near miss of a readable table is refused at start-up;
    an entry for a table that is simply absent only warns (multi-database policies)."""
    table = unique("peoples")
    await sqlite_backend.aexecute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, ssn TEXT)")
    with pytest.raises(BaseException) as failed:  # noqa: PT011 - raised through the SDK's task group
        async with sqlite_backend.client(denied_columns=f"{table[:-1]}.ssn", log_level="WARNING") as client:
            await client.call_tool("execute_query", {"query": f"SELECT ssn FROM {table}"})
    assert "does not exist" in repr(failed.value) or any(
        "does not exist" in repr(e) for e in getattr(failed.value, "exceptions", ())
    ), repr(failed.value)
    async with sqlite_backend.client(denied_columns="nosuchtable_zz.ssn", log_level="WARNING") as client:
        result = await client.call_tool("execute_query", {"query": f"SELECT id FROM {table}"})
        assert not result.is_error, result.content
