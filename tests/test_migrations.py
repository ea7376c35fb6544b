"""sqlgate's Alembic migrations on sqlite, postgres and mysql: up, down, up again, no drift."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate import demo, migrations
from sqlgate.db.engines import async_url
from sqlgate.migrations import demo_data
from tests.conftest import MYSQL_ADMIN, PG_ADMIN, Backend

SQLGATE_TABLES = {"sqlgate_audit"}
DEMO_TABLES = {"customers", "products", "orders", "order_items"}


@pytest.fixture
async def fresh_url(backend: Backend) -> AsyncIterator[str]:
    """An empty database of the backend's kind, just for one migration test."""
    name = f"sqlgate_mig_{secrets.token_hex(4)}"
    if backend.name == "sqlite":
        yield f"sqlite:///{backend.data_dir / (name + '.sqlite3')}"
        return
    admin = PG_ADMIN if backend.name == "postgres" else MYSQL_ADMIN
    quote = '"' if backend.name == "postgres" else "`"
    engine = create_async_engine(async_url(admin), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        async with engine.connect() as conn:
            force = " WITH (FORCE)" if backend.name == "postgres" else ""
            await conn.execute(text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}"))
        await engine.dispose()


async def tables_and_versions(url: str) -> tuple[set[str], list[str]]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            versions = await conn.run_sync(migrations.current_revisions)
    finally:
        await engine.dispose()
    return names, versions


async def drift(url: str) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:

            def compare(sync_conn: Any) -> list[Any]:
                context = MigrationContext.configure(
                    sync_conn,
                    opts={
                        "compare_type": True,
                        "version_table": migrations.VERSION_TABLE,
                        "include_object": migrations.include_object,
                    },
                )
                return list(compare_metadata(context, migrations.target_metadata))

            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade(fresh_url: str) -> None:
    await migrations.upgrade(fresh_url)  # default: sqlgate's own tables only
    names, versions = await tables_and_versions(fresh_url)
    assert names >= SQLGATE_TABLES and not (DEMO_TABLES & names)
    assert versions == [migrations.head("sqlgate")]

    await migrations.upgrade(fresh_url, "demo@head")
    names, versions = await tables_and_versions(fresh_url)
    assert names >= SQLGATE_TABLES | DEMO_TABLES
    assert sorted(versions) == sorted([migrations.head("sqlgate"), migrations.head("demo")])

    await migrations.downgrade(fresh_url, "base")
    names, versions = await tables_and_versions(fresh_url)
    assert not ((SQLGATE_TABLES | DEMO_TABLES) & names)
    assert versions == []

    await migrations.upgrade(fresh_url, "heads")
    names, versions = await tables_and_versions(fresh_url)
    assert names >= SQLGATE_TABLES | DEMO_TABLES
    assert len(versions) == 2


async def test_no_drift_between_models_and_migrations(fresh_url: str) -> None:
    await migrations.upgrade(fresh_url, "heads")
    assert await drift(fresh_url) == []


async def test_demo_data_is_loaded_by_the_migration(fresh_url: str) -> None:
    await migrations.upgrade(fresh_url, "demo@head")
    engine = create_async_engine(async_url(fresh_url))
    try:
        async with engine.connect() as conn:
            counts = {
                t: (await conn.execute(text(f"SELECT COUNT(*) FROM {t}"))).scalar_one() for t in sorted(DEMO_TABLES)
            }
    finally:
        await engine.dispose()
    expected = {name: len(rows) for name, rows in demo_data.sample_rows().items()}
    assert counts == expected


def test_demo_head_constant_matches_the_migrations() -> None:
    assert migrations.head("demo") == demo.DEMO_HEAD


async def test_ensure_demo_database_builds_and_is_idempotent(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    await demo.ensure_demo_database(url)
    await demo.ensure_demo_database(url)
    names, versions = await tables_and_versions(url)
    assert names >= DEMO_TABLES and versions == [demo.DEMO_HEAD]
    assert "sqlgate_audit" not in names  # the demo database holds only the shop


async def test_old_unversioned_demo_file_is_stamped_not_rebuilt(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    await migrations.upgrade(url, "demo@head")
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE {migrations.VERSION_TABLE}"))
            await conn.execute(text("DELETE FROM order_items WHERE id > 10"))
    finally:
        await engine.dispose()
    await demo.ensure_demo_database(url)
    _, versions = await tables_and_versions(url)
    assert versions == [demo.DEMO_HEAD]
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT COUNT(*) FROM order_items"))).scalar_one() == 10
    finally:
        await engine.dispose()
