"""Alembic environment for sqlgate's own tables (audit log) and the demo database.

Two ways in:

* programmatic (``sqlgate.migrations``): the caller opens an async connection and hands
  its sync facade over in ``config.attributes["connection"]``; nothing here touches the
  event loop, so it works inside a running server;
* the ``alembic`` command line: an async engine is built from ``sqlalchemy.url`` and
  driven with ``asyncio.run``.

The version table is ``sqlgate_alembic_version`` so it never collides with an
application's own ``alembic_version``; only sqlgate's tables are compared by
autogenerate (an application's tables in the same database are none of its business).
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate.migrations import VERSION_TABLE, include_object, target_metadata

config = context.config


def run_with(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        compare_type=True,
        # Batch operations everywhere: SQLite needs them for ALTER (copy-and-move); on the
        # others batch mode's "auto" recreate runs plain ALTER statements.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async(url: str) -> None:
    from sqlgate.db.dialects import async_url

    engine = create_async_engine(async_url(url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(run_with)
            await conn.commit()
    finally:
        await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif config.attributes.get("connection") is not None:
    run_with(config.attributes["connection"])
else:
    asyncio.run(run_async(str(config.get_main_option("sqlalchemy.url"))))
