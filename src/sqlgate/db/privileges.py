"""Least privilege, generated and checked: the role a policy needs, and what the connected role can do.

``grant_plan`` turns a database's effective policy (whitelist, denied columns, mode,
statement timeout, pool size) and its reflected columns into a ``GrantPlan``; the dialect
renders it as role DDL (``Dialect.grant_statements``, used by ``sqlgate grants``).
``check`` asks the server what the connected role may read beyond the policy (superuser,
file-reading or monitoring roles, SELECT on a table that is not whitelisted or on a denied
column; MySQL FILE/PROCESS/SUPER) through ``Dialect.privilege_findings``; ``health_check``
reports it as its ``privileges`` section, ``degraded`` with a hint to run ``sqlgate grants``.
The validator is the first wall; this makes the database the second one.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlglot import exp

from sqlgate.db.dialects.grants import GrantPlan, GrantTable

if TYPE_CHECKING:
    from sqlgate.db.engines import Database

VERSION_TABLES = frozenset({"sqlgate_alembic_version", "alembic_version"})
GRANTS_HINT = "run `sqlgate grants` and connect as the role it prints (docs/safety.md, least privilege)"


class PrivilegeHealth(BaseModel):
    """The ``privileges`` section of a database's health report."""

    checked: bool
    beyond_policy: bool = False
    findings: list[str] = []
    hint: str | None = None


def split_table(entry: str, dialect: str) -> tuple[str | None, str] | None:
    """(schema, name) of a whitelist entry as written; None when it does not parse."""
    try:
        table = exp.to_table(entry, dialect=dialect)
    except Exception:  # noqa: BLE001 - an unreadable entry grants nothing
        return None
    if not isinstance(table, exp.Table) or table.args.get("catalog"):
        return None
    schema = table.args.get("db")
    return (str(schema.this) if schema is not None else None, str(table.this))


def denied_column_parts(entries: tuple[str, ...], dialect: str) -> list[tuple[str | None, str, str]]:
    """(schema, table, column) of each ``denied_columns`` entry that names its table."""
    found = []
    for entry in entries:
        try:
            column = exp.to_column(entry, dialect=dialect)
        except Exception:  # noqa: BLE001, S112 - an unreadable entry names nothing
            continue
        table = column.args.get("table") if isinstance(column, exp.Column) else None
        if table is None:
            continue
        db = column.args.get("db")
        found.append((str(db.this) if db is not None else None, str(table.this), str(column.this.this)))
    return found


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").lower() == (b or "").lower()


async def grant_plan(database: Database, role: str | None = None, password: str | None = None) -> GrantPlan:
    """The plan for ``database`` (set up first: its reflected whitelist and default schema)."""
    from sqlgate.db import reflect

    await database.ensure_ready()
    policy = database.policy
    dialect = database.dialect
    schema = policy.default_schema
    entries = [p for p in (split_table(e, dialect) for e in policy.allowed_tables or ()) if p is not None]
    denied = denied_column_parts(policy.denied_columns, dialect)
    restricted = [(s or schema, t) for s, t, _ in denied]
    columns = await reflect.column_names(database.engine, restricted) if restricted else {}
    present = await reflect.table_names(database.engine, schema)
    bookkeeping = tuple(t for t in present if t.lower() in VERSION_TABLES)
    tables = []
    for table_schema, name in entries:
        own_schema = table_schema or schema
        hidden = {c.lower() for s, t, c in denied if _same(s or schema, own_schema) and _same(t, name)}
        allowed: tuple[str, ...] | None = None
        if hidden:
            known = next((cols for (s, t), cols in columns.items() if _same(s, own_schema) and _same(t, name)), None)
            allowed = tuple(c for c in (known or ()) if c.lower() not in hidden)
        tables.append(GrantTable(own_schema, name, allowed))
    pool: Any = database.engine.pool
    size = pool.size() if hasattr(pool, "size") else 5
    overflow = getattr(pool, "_max_overflow", 0) or 0
    return GrantPlan(
        role=role or ("sqlgate_writer" if not policy.read_only else "sqlgate_reader"),
        password=password or secrets.token_urlsafe(18),
        database=database.engine.url.database or "",
        default_schema=schema,
        tables=tuple(tables),
        read_write=not policy.read_only,
        statement_timeout_ms=policy.statement_timeout_ms,
        # the pool, its overflow, a health probe and a cancel connection
        connection_limit=int(size) + int(overflow) + 2,
        server_version=database.server_version,
        denied_columns=tuple((s or schema, t, c) for s, t, c in denied),
        bookkeeping=bookkeeping,
    )


async def check(database: Database, engine: Any, *, name_outside: bool = False) -> PrivilegeHealth:
    """What the connected role may do beyond the policy (never raises). ``name_outside``:
    name the readable tables outside the whitelist (for the operator; an agent gets a count)."""
    plan = await grant_plan(database, role="-", password="-")  # noqa: S106 - a plan to check, never printed
    plan = dataclasses.replace(plan, name_outside=name_outside)
    async with engine.connect() as conn:
        try:
            findings = await database.driver.privilege_findings(conn, plan)
        finally:
            await conn.rollback()
    if findings is None:
        return PrivilegeHealth(checked=False)
    return PrivilegeHealth(
        checked=True, beyond_policy=bool(findings), findings=findings, hint=GRANTS_HINT if findings else None,
    )


__all__ = [
    "GRANTS_HINT", "GrantPlan", "GrantTable", "PrivilegeHealth", "check", "denied_column_parts", "grant_plan",
    "split_table",
]
