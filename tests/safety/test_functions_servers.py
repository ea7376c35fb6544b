"""Every allowlisted function exists and works on the real server, as listed.

Each entry of ``safety/profiles/functions/<dialect>.toml`` carries a sample call; this runs
every sample (and every syntax sample) on PostgreSQL 15, MariaDB 10.11 and SQLite, one
statement at a time, and reports all that fail at once. A sample that does not run means
the list names a function the server does not have (or not with that meaning).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate.db.engines import async_url
from sqlgate.safety import functions
from tests.conftest import Backend

PROFILE_OF = {"sqlite": "sqlite", "postgres": "postgresql", "mysql": "mysql"}
# Syntax samples that cannot run alone: MATCH ... AGAINST needs a FULLTEXT index, VALUES(col)
# is only valid inside ON DUPLICATE KEY UPDATE (corpus row rw-upsert-duplicate-key), and
# MariaDB lacks MySQL's -> / ->> (a MySQL-only spelling the parser must still admit).
NEEDS_TABLE = {"match_against", "odku_values", "json_arrow_mysql_only"}


def queries(dialect: str) -> list[tuple[str, str]]:
    data = functions.allowlist(dialect)
    found = [(f"{e.group}.{e.name}", e.query()) for e in data.entries()]
    found += [(f"syntax.{what}", f"SELECT {sample}") for what, sample in data.syntax if what not in NEEDS_TABLE]
    return found


async def failures(backend: Backend) -> list[str]:
    engine = create_async_engine(async_url(backend.url), isolation_level="AUTOCOMMIT")
    failed: list[str] = []
    try:
        async with engine.connect() as conn:
            for label, sql in queries(PROFILE_OF[backend.name]):
                try:
                    result = await conn.execute(text(sql.replace(":", r"\:")))
                    rows: list[Any] = list(result.fetchall())
                    if not rows:
                        failed.append(f"{label}: {sql} returned no row")
                except Exception as exc:  # noqa: BLE001 - collected and reported together
                    failed.append(f"{label}: {sql} -> {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    finally:
        await engine.dispose()
    return failed


async def test_every_allowlisted_function_runs_on_the_server(backend: Backend) -> None:
    failed = await failures(backend)
    assert not failed, f"{len(failed)} allowlisted samples fail on {backend.name}:\n" + "\n".join(failed)
