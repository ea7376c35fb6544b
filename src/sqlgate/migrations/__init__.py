"""sqlgate's Alembic migrations, runnable from an installed wheel.

Two branches share one script directory and the version table
``sqlgate_alembic_version``:

* ``sqlgate`` — sqlgate's own tables (the audit log). ``sqlgate migrate upgrade`` runs
  it against a database so that database can hold the audit log;
* ``demo`` — the demo shop (customers, products, orders, order_items and their sample
  rows, ``demo_data``). The embedded demo database is built by it; ``sqlgate migrate upgrade demo@head``
  loads the same shop into any database (handy for trying sqlgate on PostgreSQL).

The tables themselves are defined in ``tables`` (the models autogenerate compares).
Every function here takes a plain database URL and is async; Alembic runs on the sync
facade of an async connection (``run_sync``), so it works inside a running event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from sqlgate.migrations.tables import target_metadata as target_metadata

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

VERSION_TABLE = "sqlgate_alembic_version"
SCRIPT_LOCATION = Path(__file__).parent
SQLGATE_BRANCH = "sqlgate"
DEMO_BRANCH = "demo"


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Autogenerate looks at sqlgate's tables only, never at an application's own."""
    if type_ == "table":
        return name in target_metadata.tables
    return True


def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@functools.cache
def script_directory() -> Any:
    """The scripts shipped in the package (read once per process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head(branch: str = SQLGATE_BRANCH) -> str:
    """The head revision of one branch."""
    script = script_directory()
    revision = script.get_revision(f"{branch}@head")
    return str(revision.revision)


@dataclass(frozen=True)
class MigrationStatus:
    """Where one branch of a database stands."""

    branch: str
    current: str | None
    head: str

    @property
    def state(self) -> str:
        if self.current is None:
            return "not_installed"
        return "current" if self.current == self.head else "behind"


def _engine(url: str) -> AsyncEngine:
    from sqlalchemy.ext.asyncio import create_async_engine

    from sqlgate.db.dialects import async_url

    return create_async_engine(async_url(url), poolclass=sa.pool.NullPool)


LOCK_WAIT_S = 60.0  # how long a migration of a local SQLite file waits for another process's


@contextlib.asynccontextmanager
async def _one_process_at_a_time(url: str) -> AsyncIterator[None]:
    """On a local SQLite file, only one process migrates at a time (an advisory lock on
    ``<file>.lock``): two ``sqlgate serve`` started together on one data directory both saw
    no version table and both created the tables; the second stopped at start-up on "table
    customers already exists" with a stack trace, and its audit sink on "table
    sqlgate_alembic_version already exists". The one that waited finds the head recorded and
    does nothing. Server databases order their DDL themselves."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here
        fcntl = None  # type: ignore[assignment]
    database = sa.engine.make_url(url).database if url.startswith("sqlite") else None
    if fcntl is None or not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    lock = Path(database).with_name(Path(database).name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        loop = asyncio.get_running_loop()
        until = loop.time() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if loop.time() >= until:
                    raise TimeoutError(f"another process has been migrating {database} for {LOCK_WAIT_S:g} s") from None
                await asyncio.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


async def _run(url: str, action: Any) -> Any:
    """Run ``action(config)`` with a connection to ``url`` in ``config.attributes``."""
    async with _one_process_at_a_time(url):
        return await _run_locked(url, action)


async def _run_locked(url: str, action: Any) -> Any:
    engine = _engine(url)
    try:
        async with engine.connect() as conn:

            def run(sync_conn: Any) -> Any:
                config = alembic_config(url)
                config.attributes["connection"] = sync_conn
                return action(config)

            result = await conn.run_sync(run)
            await conn.commit()
            return result
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = f"{SQLGATE_BRANCH}@head") -> None:
    from alembic import command

    await _run(url, lambda config: command.upgrade(config, revision))


async def downgrade(url: str, revision: str = f"{SQLGATE_BRANCH}@base") -> None:
    from alembic import command

    await _run(url, lambda config: command.downgrade(config, revision))


async def stamp(url: str, revision: str) -> None:
    from alembic import command

    await _run(url, lambda config: command.stamp(config, revision))


def current_revisions(sync_conn: Any) -> list[str]:
    """The revisions recorded in ``sqlgate_alembic_version`` (empty when there is none)."""
    # Listed, not has_table(): MySQL answers has_table for a table the role may not see
    # (a least-privilege role, `sqlgate grants`) with "command denied" instead of False.
    if VERSION_TABLE not in sa.inspect(sync_conn).get_table_names():
        return []
    rows = sync_conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).fetchall()
    return sorted(str(row[0]) for row in rows)


async def current(url: str) -> list[str]:
    engine = _engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(current_revisions)
    finally:
        await engine.dispose()


def branch_status(revisions: list[str], branch: str = SQLGATE_BRANCH) -> MigrationStatus:
    """Which of ``revisions`` belongs to ``branch``, compared with that branch's head."""
    script = script_directory()
    mine = None
    for rev in revisions:
        try:
            found = script.get_revision(rev)
        except Exception:  # noqa: S112 - a revision this sqlgate does not know
            continue
        if found is not None and branch in _branches_of(script, found):
            mine = rev
    return MigrationStatus(branch=branch, current=mine, head=head(branch))


def _branches_of(script: Any, revision: Any) -> set[str]:
    labels: set[str] = set()
    for rev in script.iterate_revisions(revision.revision, "base"):
        labels |= set(rev.branch_labels or ())
    return labels


def history() -> list[dict[str, Any]]:
    script = script_directory()
    entries = []
    for rev in script.walk_revisions():
        entries.append({
            "revision": rev.revision,
            "down_revision": rev.down_revision,
            "branch": sorted(_branches_of(script, rev)),
            "message": rev.doc,
        })
    return entries
