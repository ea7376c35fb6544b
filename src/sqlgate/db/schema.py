"""Reflected table structure, cached per database and refreshed on demand.

Tools that write SQL themselves (bulk_insert), advise on indexes (query_optimization) or
describe tables to agents (describe_schema) read the structure from here; nothing on the
hot path of execute_query reflects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect

from sqlgate.db.structure import ColumnInfo, ForeignKeyInfo, IndexInfo, SchemaCache, TableInfo
from sqlgate.errors import PolicyViolation

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlgate.db.dialects import Dialect
    from sqlgate.db.engines import Database

__all__ = [
    "ColumnInfo", "ForeignKeyInfo", "IndexInfo", "SchemaCache", "TableInfo", "forget", "refuse_view_plans", "split_name", "table_info", "view_plan_refused",
]


def _cache(database: Database) -> SchemaCache:
    return database.schema_cache


def split_name(table: str) -> tuple[str | None, str]:
    schema, dot, name = table.rpartition(".")
    return (schema or None, name) if dot else (None, table)


def _reflect_one(sync_conn: Any, dialect: Dialect, schema: str | None, name: str) -> TableInfo | None:
    inspector = inspect(sync_conn)
    # SQLAlchemy 2's has_table is true for views too: ask for the views by name.
    views = inspector.get_view_names(schema=schema)
    is_view = name in views or name.lower() in {v.lower() for v in views}
    if not is_view and not inspector.has_table(name, schema=schema):
        return None
    columns = tuple(
        ColumnInfo(
            name=c["name"],
            type=str(c["type"]),
            nullable=bool(c.get("nullable", True)),
            default=None if c.get("default") is None else str(c.get("default")),
            autoincrement=c.get("autoincrement") is True,
            comment=c.get("comment"),
        )
        for c in inspector.get_columns(name, schema=schema)
    )
    if is_view:
        return TableInfo(name, schema, columns, (), (), (), (), None, True)
    pk = tuple(inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or ())
    uniques = [tuple(u["column_names"]) for u in inspector.get_unique_constraints(name, schema=schema)]
    for cols in dialect.extra_unique_constraints(sync_conn, schema, name):
        if cols not in uniques:
            uniques.append(cols)
    indexes = tuple(
        IndexInfo(i.get("name"), tuple(c for c in i["column_names"] if c), bool(i.get("unique")))
        for i in inspector.get_indexes(name, schema=schema)
    )
    fks = tuple(
        ForeignKeyInfo(
            tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]),
            f.get("referred_schema"),
        )
        for f in inspector.get_foreign_keys(name, schema=schema)
    )
    try:
        comment = inspector.get_table_comment(name, schema=schema).get("text")
    except NotImplementedError:
        comment = None
    return TableInfo(name, schema, columns, pk, tuple(uniques), indexes, fks, comment)


async def table_info(database: Database, table: str, *, refresh: bool = False) -> TableInfo:
    """Structure of a whitelisted ``table`` (``name`` or ``schema.name``), cached.

    Raises TABLE_NOT_ALLOWED when the table is not whitelisted or does not exist.
    """
    import sqlglot.expressions as exp

    try:
        parsed = exp.to_table(table, dialect=database.dialect)
    except Exception:
        parsed = None
    name = database.allowed_name(parsed) if parsed is not None else None
    if name is None or parsed is None:
        shown = sorted(t.qualified() for t in database.whitelist()[1])
        raise PolicyViolation(
            f"table {table} is not allowed",
            ("allowed tables: " + ", ".join(shown)) if shown else "no tables are whitelisted",
            code="TABLE_NOT_ALLOWED",
        )
    cache = _cache(database)
    key = name.qualified()
    if not refresh and key in cache.tables:
        return cache.tables[key]
    async with cache.lock:
        if not refresh and key in cache.tables:
            return cache.tables[key]
        schema = name.schema if name.schema != database.policy.default_schema else None
        from sqlgate.db import boundary  # (boundary imports engines, which this module serves)

        info: TableInfo | None = await boundary.run_sync(
            database, _reflect_one, database.driver, schema, _reflected_case(parsed, name.name)
        )
        if info is None:
            raise PolicyViolation(
                f"table {table} does not exist in database {database.name!r}",
                "check the name; describe_schema lists the tables",
                code="TABLE_NOT_ALLOWED",
            )
        cache.tables[key] = info
        return info


def _reflected_case(parsed: Any, folded: str) -> str:
    # Quoted identifiers keep their case; unquoted ones are folded by the safety rules.
    identifier = parsed.args.get("this")
    return str(identifier.this) if getattr(identifier, "quoted", False) else folded


def forget(database: Database) -> None:
    """Drop the cached structure (after a migration, or on an explicit refresh)."""
    _cache(database).tables.clear()


def view_plan_refused(table: str, hint: str) -> PolicyViolation:
    """The refusal of a plan of a statement on a view: a view's plan is the plan of the
    tables behind it (their names, row counts and indexes), with the view's own conditions
    and their constants, and on MariaDB values of rows read while planning; those tables
    need not be whitelisted."""
    return PolicyViolation(
        f"{table} is a view: its plan would show the tables behind it", hint, code="STATEMENT_NOT_ALLOWED"
    )


async def refuse_view_plans(database: Database, tables: Iterable[str], hint: str) -> None:
    """``view_plan_refused`` when one of ``tables`` is a view."""
    for table in tables:
        try:
            info = await table_info(database, table)
        except PolicyViolation:
            continue  # not whitelisted or gone: the statement's own check says so
        if info.is_view:
            raise view_plan_refused(table, hint)
