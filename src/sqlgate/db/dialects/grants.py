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
    name_outside: bool = False
    """Whether the checks may name tables and schemas outside the whitelist: for the
    operator (``sqlgate health``) yes; never in ``health_check``, which an agent reads."""


SHOWN = 5  # findings name at most this many tables


def outside_whitelist(plan: GrantPlan, subject: str, tables: list[str]) -> str:
    """The finding for ``tables`` beyond the whitelist that ``subject`` can read: named for
    the operator, only counted where an agent reads it (their names are not its to know)."""
    head = f"{subject} {len(tables)} table(s) outside the whitelist"
    if not plan.name_outside:
        return f"{head} (`sqlgate health` names them)"
    more = f" and {len(tables) - SHOWN} more" if len(tables) > SHOWN else ""
    return f"{head}: {', '.join(tables[:SHOWN])}{more}"
