"""Proof of benefit: does the planner use a suggested index, and is the plan cheaper?

* PostgreSQL with the ``hypopg`` extension: each suggestion is created as a
  *hypothetical* index (planner memory of this connection only, nothing on disk),
  the statement is planned again, the hypothetical index is dropped. Suggestions that
  the planner does not use or that do not lower the total cost are dropped. sqlgate
  never runs ``CREATE EXTENSION``: hypopg is used only where an administrator installed it.
* SQLite: the index is created for real on a separate, short-lived read-write connection
  inside a transaction that is always rolled back (nothing is committed; writers wait
  for the lock meanwhile). This works even when the database is read_only through
  sqlgate, whose own connections have ``PRAGMA query_only`` on.
* MySQL/MariaDB/TiDB: no safe way (hypothetical indexes do not exist there, and sqlgate
  does not change a user's schema), so suggestions stay unverified.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

from sqlglot import exp

from sqlgate.advisor.capture import explain_postgres
from sqlgate.advisor.models import IndexSuggestion
from sqlgate.db.dialects import bind

UNVERIFIED_MYSQL = (
    "unverified: MySQL/MariaDB cannot plan hypothetical indexes and sqlgate never changes your schema; "
    "create it on a copy and compare EXPLAIN"
)


async def prove_postgres(conn: Any, statement: exp.Expr, params: dict[str, Any], suggestions: list[IndexSuggestion],
                         cost_before: float | None, timeout_ms: int) -> tuple[list[IndexSuggestion], list[str]]:
    """Keep the suggestions hypopg shows to lower the planner's cost; notes on the others."""
    installed = await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'")
    if not installed:
        for suggestion in suggestions:
            suggestion.verification = (
                "unverified: the hypopg extension is not installed in this database (an administrator can "
                "run CREATE EXTENSION hypopg; sqlgate never installs extensions)"
            )
        return suggestions, []
    kept, notes = [], []
    # Hypothetical indexes live in this (pooled) connection's memory, not in the
    # transaction: clear any left by an earlier call that was cancelled half-way.
    await conn.execute("SELECT hypopg_reset()")
    for suggestion in suggestions:
        created = await conn.fetchrow(
            "SELECT indexrelid, indexname FROM hypopg_create_index($1)", suggestion.create_statement
        )
        try:
            async with conn.transaction():  # a savepoint: if planning fails, the drop below still runs
                raw = await explain_postgres(conn, statement, params, "FORMAT JSON", timeout_ms)
        finally:
            await conn.execute("SELECT hypopg_drop_index($1)", created["indexrelid"])
        after = float(raw[0]["Plan"]["Total Cost"])
        used = str(created["indexname"]) in json.dumps(raw)
        suggestion.cost_before, suggestion.cost_after = cost_before, after
        if used and cost_before is not None and after < cost_before:
            suggestion.verified = True
            suggestion.verification = (
                f"hypopg: the planner uses the hypothetical index; estimated cost {cost_before:g} -> {after:g}"
            )
            kept.append(suggestion)
        else:
            why = "the planner does not use it" if not used else f"cost {cost_before:g} -> {after:g} is no gain"
            notes.append(f"dropped suggestion {suggestion.create_statement}: hypopg shows {why}")
    return kept, notes


async def prove_sqlite(path: str | None, statement: exp.Expr, params: dict[str, Any],
                       suggestions: list[IndexSuggestion], timeout_ms: int) -> tuple[list[IndexSuggestion], list[str]]:
    if not path or path == ":memory:" or path.startswith("file::memory:"):
        for suggestion in suggestions:
            suggestion.verification = "unverified: an in-memory database cannot be opened a second time"
        return suggestions, []
    sql = "EXPLAIN QUERY PLAN " + bind(statement, "sqlite", params, lambda name: f":{name}")
    args = {name: (json.dumps(v) if isinstance(v, dict | list) else v) for name, v in params.items()}
    kept, notes = [], []
    for suggestion in suggestions:
        try:
            used, detail = await asyncio.to_thread(_sqlite_try, path, sql, args, suggestion, timeout_ms)
        except sqlite3.Error as exc:
            suggestion.verification = f"unverified: SQLite could not try the index ({exc})"
            kept.append(suggestion)
            continue
        if used:
            suggestion.verified = True
            suggestion.verification = f"SQLite plan with the index (created and rolled back): {detail}"
            kept.append(suggestion)
        else:
            notes.append(f"dropped suggestion {suggestion.create_statement}: SQLite's planner does not use it")
    return kept, notes


def _sqlite_try(path: str, sql: str, args: dict[str, Any], suggestion: IndexSuggestion,
                timeout_ms: int) -> tuple[bool, str]:
    name = suggestion.create_statement.split(" ON ")[0].removeprefix("CREATE INDEX ").strip('"`').lower()
    deadline = time.monotonic() + timeout_ms / 1000
    con = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None, timeout=2)
    try:
        con.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 1000)
        con.execute("BEGIN")
        try:
            con.execute(suggestion.create_statement)
            rows = con.execute(sql, args).fetchall()
        finally:
            con.execute("ROLLBACK")
    finally:
        con.close()
    details = [str(r[-1]) for r in rows]
    hit = [d for d in details if f"INDEX {name}".lower() in d.lower()]
    return bool(hit), "; ".join(hit or details)
