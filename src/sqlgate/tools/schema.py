"""describe_schema, and the same as resources: ``schema://{database}``, ``schema://{database}/{table}``.

The output is written for a model that pays per token: one line per column
(``name TYPE [NOT NULL] [DEFAULT x] [PK] [DENIED] [-- comment]``), keys and indexes as
short strings, nothing repeated. Structure comes from the reflection cache
(``db/schema.py``); ``refresh`` re-reads it. Row counts are read fresh each call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from sqlgate.db import schema as db_schema
from sqlgate.db.row_counts import row_counts, source
from sqlgate.errors import PolicyViolation, SqlgateError
from sqlgate.tools.base import database_for, record, runtime, tool_result

if TYPE_CHECKING:
    from sqlgate.db.engines import Database


class TableSchema(BaseModel):
    name: str
    rows: int | None = None
    rows_estimated: bool | None = None  # true: a catalog estimate (see row_counts_from)
    view: bool | None = None
    comment: str | None = None
    columns: list[str]
    foreign_keys: list[str] | None = None
    indexes: list[str] | None = None


class SchemaResult(BaseModel):
    database: str
    dialect: str
    mode: str
    row_counts_from: str
    tables: list[TableSchema]
    missing: list[str] | None = None  # whitelisted but not found in the database
    hint: str | None = None


DESCRIPTION = """Describe the tables you may query; call it before writing SQL. Per table: row count,
columns (`name TYPE [NOT NULL] [DEFAULT x] [PK] [DENIED]`), foreign keys, indexes. DENIED
columns cannot be read (no SELECT *).
"""


def _denied(db: Database) -> set[tuple[str, str]]:
    """(table key, column) pairs, lower-cased; table key is `name` or `schema.name`."""
    pairs = set()
    for entry in db.policy.denied_columns:
        table, dot, column = entry.lower().rpartition(".")
        if dot and table and column:
            pairs.add((table, column))
    return pairs


def _column_line(column: db_schema.ColumnInfo, pk: tuple[str, ...], denied: bool) -> str:
    parts = [column.name, column.type]
    if not column.nullable and column.name not in pk:
        parts.append("NOT NULL")
    if denied:
        # Name and type only: a denied column's default and comment are text an operator
        # wrote about its values (a default value, "format 123-45-6789", a sample).
        return " ".join([*parts, "PK", "DENIED"] if column.name in pk else [*parts, "DENIED"])
    if column.default is not None:
        default = column.default
        parts.append("DEFAULT auto" if default.startswith("nextval(") else f"DEFAULT {default}")
    elif column.autoincrement:
        parts.append("DEFAULT auto")
    if column.name in pk:
        parts.append("PK")
    if column.comment:
        parts.append(f"-- {column.comment}")
    return " ".join(parts)


def _target(fk: db_schema.ForeignKeyInfo, visible: Callable[[str | None, str], bool]) -> str:
    """The referred table and columns; a table outside the whitelist is not named (nor its columns)."""
    if not visible(fk.referred_schema, fk.referred_table):
        return "(a table outside the whitelist)"
    schema = f"{fk.referred_schema}." if fk.referred_schema else ""
    return f"{schema}{fk.referred_table}.{', '.join(fk.referred_columns)}"


def shape(info: db_schema.TableInfo, denied: set[tuple[str, str]], count: tuple[int, bool] | None,
          visible: Callable[[str | None, str], bool]) -> TableSchema:
    keys = {info.name.lower()} | ({f"{info.schema}.{info.name}".lower()} if info.schema else set())
    pk = info.primary_key if len(info.primary_key) == 1 else ()
    columns = [
        _column_line(c, pk, any((k, c.name.lower()) in denied for k in keys)) for c in info.columns
    ]
    if len(info.primary_key) > 1:
        columns.append(f"PRIMARY KEY ({', '.join(info.primary_key)})")
    fks = [f"{', '.join(f.columns)} -> {_target(f, visible)}" for f in info.foreign_keys]
    indexes = [f"{i.name}({', '.join(i.columns)}){' unique' if i.unique else ''}" for i in info.indexes]
    return TableSchema(
        name=f"{info.schema}.{info.name}" if info.schema else info.name,
        rows=count[0] if count else None,
        rows_estimated=True if count and count[1] else None,
        view=True if info.is_view else None,
        comment=info.comment or None,
        columns=columns,
        foreign_keys=fks or None,
        indexes=indexes or None,
    )


def render_text(result: SchemaResult) -> str:
    """The compact text form (what most agents read)."""
    lines = [f"database {result.database} ({result.dialect}, {result.mode}); rows: {result.row_counts_from}"]
    for table in result.tables:
        head = table.name + (" (view)" if table.view else "")
        if table.rows is not None:
            head += f" {'~' if table.rows_estimated else ''}{table.rows} rows"
        if table.comment:
            head += f" -- {table.comment}"
        lines.append(head)
        lines.extend(f"  {c}" for c in table.columns)
        lines.extend(f"  FK {fk}" for fk in table.foreign_keys or ())
        lines.extend(f"  INDEX {ix}" for ix in table.indexes or ())
    if result.missing:
        lines.append("whitelisted but missing: " + ", ".join(result.missing))
    if result.hint:
        lines.append(result.hint)
    return "\n".join(lines)


async def describe(db: Database, tables: list[str] | None, refresh: bool) -> SchemaResult:
    """Reflect (or read from the cache) the whitelisted ``tables`` (default: all)."""
    if refresh:
        db_schema.forget(db)
    wanted = list(tables) if tables else list(db.policy.allowed_tables or ())
    infos: list[db_schema.TableInfo] = []
    missing = []
    for name in wanted:
        try:
            infos.append(await db_schema.table_info(db, name))
        except PolicyViolation as error:
            if tables or "does not exist" not in error.message:
                raise  # asked-for tables must be allowed and exist
            missing.append(name)
    counts = await row_counts(db, [(i.schema, i.name) for i in infos if not i.is_view])
    by_table = iter(counts)
    denied = _denied(db)
    shaped = [shape(i, denied, None if i.is_view else next(by_table), db.is_whitelisted) for i in infos]
    hint = None
    if any("DENIED" in c.split(" -- ")[0].split() for t in shaped for c in t.columns):
        hint = "DENIED columns cannot be read: name the columns you need instead of SELECT *"
    return SchemaResult(
        database=db.name,
        dialect=db.dialect_name,
        mode=str(db.policy.mode),
        row_counts_from=source(db.driver),
        tables=shaped,
        missing=missing or None,
        hint=hint,
    )


async def describe_schema(
    ctx: Context[Any],
    tables: Annotated[
        list[str] | None, Field(description="Only these tables (default: every whitelisted table)")
    ] = None,
    refresh: Annotated[bool, Field(description="Re-read the structure instead of using the cache")] = False,
    database: Annotated[
        str | None, Field(description="Name of a configured database (default: the first)")
    ] = None,
) -> Annotated[CallToolResult, SchemaResult]:
    db = await database_for(ctx, database)
    result = await describe(db, tables, refresh)
    record(tables=[t.name for t in result.tables], rows=len(result.tables))
    return tool_result(result, text=render_text(result))


async def _resource_text(ctx: Context[Any], database: str, table: str | None) -> str:
    try:
        db = runtime(ctx).databases.get(database)
        record(database=db.name)
        await db.ensure_ready()
        result = await describe(db, [table] if table else None, refresh=False)
        record(tables=[t.name for t in result.tables], rows=len(result.tables))
        return render_text(result)
    except SqlgateError as error:
        # Resource reads have no isError result: the error travels as the protocol error text.
        failed = ResourceError(json.dumps({"error": error.to_dict()}))
        failed.sqlgate_code = error.code  # type: ignore[attr-defined]  # for the audit row (server/app.py)
        raise failed from None


async def database_schema(database: str, ctx: Context[Any]) -> str:
    """Every whitelisted table of one database, in describe_schema's compact text form."""
    return await _resource_text(ctx, database, None)


async def table_schema(database: str, table: str, ctx: Context[Any]) -> str:
    """One whitelisted table, in describe_schema's compact text form."""
    return await _resource_text(ctx, database, table)


def register(server: Any, all_read_only: bool) -> None:
    server.add_tool(
        describe_schema,
        name="describe_schema",
        description=DESCRIPTION,
        annotations=ToolAnnotations(
            title="Describe tables", read_only_hint=True, idempotent_hint=True, open_world_hint=False
        ),
        structured_output=True,
    )
    server.resource(
        "schema://{database}/{table}", name="table_schema", mime_type="text/plain",
        description="Columns, keys, indexes and row count of one whitelisted table",
    )(table_schema)
    server.resource(
        "schema://{database}", name="database_schema", mime_type="text/plain",
        description="Every whitelisted table of a configured database (compact text)",
    )(database_schema)
