"""The least-privilege plan a dialect renders as role DDL (pure data; see db/privileges.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GrantTable:
    """One whitelisted table: its schema, its name, and, when some of its columns are
    denied, the columns the role may use (``None``: the whole table)."""

    schema: str | None
    name: str
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class GrantPlan:
    """What the least-privilege role for one database may do."""

    role: str
    password: str
    database: str
    default_schema: str | None
    tables: tuple[GrantTable, ...]
    read_write: bool
    statement_timeout_ms: int
    connection_limit: int
    server_version: str = ""
    denied_columns: tuple[tuple[str | None, str, str], ...] = ()
    """(schema, table, column) of every denied column, for the checks."""
    bookkeeping: tuple[str, ...] = ()
    """sqlgate's own migration-version tables in the default schema: SELECT for health's
    migration check (never whitelisted, so never readable through the tools)."""
