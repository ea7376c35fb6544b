"""The embedded demo database: a small, deterministic shop (customers, products, orders,
order_items) so that ``sqlgate serve`` works with zero set-up.

Created once in the user's data directory by the ``demo`` branch of sqlgate's migrations
(its tables are in ``sqlgate.migrations.tables``, its rows in
``sqlgate.migrations.demo_data``); read-only when served. Called where a demo database is
about to be served or probed: the server lifespan and ``sqlgate health``; the db layer
knows nothing of it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlgate import migrations
from sqlgate.logging import get_logger
from sqlgate.settings import Settings

log = get_logger("sqlgate.demo")

DEMO_HEAD = "demo_0001"  # the demo branch's head; a test keeps it equal to the migrations


async def ensure_demo_database(url: str) -> None:
    """Create (or bring up to date) the demo SQLite file; idempotent and cheap when current.

    The schema and the sample rows come from the ``demo`` branch of sqlgate's migrations,
    so the demo database is built exactly the way ``sqlgate migrate`` builds it anywhere.
    """
    path = Path(url.removeprefix("sqlite:///"))
    state = await asyncio.to_thread(_demo_state, path)
    if state == "current":
        return  # the common start: no Alembic script directory, no engine
    path.parent.mkdir(parents=True, exist_ok=True)
    if state == "unversioned":
        # Built by sqlgate before the demo came from migrations: same tables, same rows.
        await migrations.stamp(f"sqlite:///{path}", f"{migrations.DEMO_BRANCH}@head")
    await migrations.upgrade(f"sqlite:///{path}", f"{migrations.DEMO_BRANCH}@head")


def _demo_state(path: Path) -> str:
    """``current``, ``missing`` (no file / no tables), ``unversioned`` or ``behind``."""
    if not path.exists() or path.stat().st_size == 0:
        return "missing"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "sqlgate_alembic_version" in names:
            versions = {row[0] for row in conn.execute("SELECT version_num FROM sqlgate_alembic_version")}
            return "current" if DEMO_HEAD in versions else "behind"
        return "unversioned" if "orders" in names else "missing"
    finally:
        conn.close()


async def prepare_demo_databases(settings: Settings, *, announce: bool = False) -> None:
    """Create or update every demo database ``settings`` configures (none when a URL is set)."""
    for config in settings.resolved_databases():
        if not config.demo:
            continue
        await ensure_demo_database(config.url)
        if announce:
            log.info(
                "serving the demo database (read-only); configure DATABASE_URL to serve yours",
                path=config.url.removeprefix("sqlite:///"),
            )
