"""``denied_columns``: columns no statement may reference, directly or through ``*``.

The validator has no schema, so it reasons from names alone and errs on the side of
denying:

* a column reference qualified by a table (or its alias) that has a denied column of
  that name is denied; an unqualified reference is denied when any table in the
  statement has a denied column of that name (it may be that table's);
* ``*`` and ``t.*`` over a table that has any denied column are denied (sqlgate cannot
  expand ``*`` without the schema; naming the columns works), and so is ``RETURNING *``;
* where the dialect reads a bare table name or alias used as a value as the whole row
  (PostgreSQL: ``profile.whole_row_references``) (``row_to_json(c)``) is the
  whole row, so it is denied too; so are ``USING (col)`` and ``NATURAL JOIN`` over them.

Filtering, sorting, grouping or joining on a denied column counts as reading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlglot import exp

from sqlgate.errors import PolicyViolation
from sqlgate.safety import profiles
from sqlgate.safety.profiles import SafetyProfile
from sqlgate.safety.tables import TableName, table_name


@dataclass(frozen=True)
class DeniedColumn:
    table: TableName
    column: str

    def qualified(self) -> str:
        return f"{self.table.qualified()}.{self.column}"


def parse_denied(entries: tuple[str, ...], dialect: str | SafetyProfile) -> tuple[DeniedColumn, ...]:
    return _parse_denied(entries, profiles.get(dialect))


@lru_cache(maxsize=256)
def _parse_denied(entries: tuple[str, ...], profile: SafetyProfile) -> tuple[DeniedColumn, ...]:
    found = []
    for entry in entries:
        try:
            column = exp.to_column(entry, dialect=profile.sqlglot_dialect)
        except Exception:  # noqa: S112 - an unreadable entry is reported at start-up, not here
            continue
        table = column.args.get("table")
        if not isinstance(column, exp.Column) or table is None or isinstance(column.this, exp.Star):
            continue
        found.append(
            DeniedColumn(TableName(profile.identifier_key(column.args.get("db")), profile.identifier_key(table) or ""),
                         str(column.name).lower())
        )
    return tuple(found)


def _columns_of(name: TableName, denied: tuple[DeniedColumn, ...], default: str | None) -> set[str]:
    cols = set()
    for entry in denied:
        same_name = entry.table.name == name.name
        same_schema = (
            entry.table.schema == name.schema
            or (entry.table.schema is None and name.schema in (None, default))
            or (name.schema is None and entry.table.schema == default)
        )
        if same_name and same_schema:
            cols.add(entry.column)
    return cols


def _deny_star(where: str) -> PolicyViolation:
    return PolicyViolation(
        f"{where} would read a column that is not allowed",
        "name the columns you need instead of *",
        code="COLUMN_NOT_ALLOWED",
    )


def _deny_column(name: str, qualified: bool = True) -> PolicyViolation:
    hint = ("remove it from the query (selecting, filtering, sorting or joining on it all read it); "
            "name the columns you need")
    if not qualified:
        hint += f"; if you mean another table's {name}, qualify it with that table's name or alias"
    return PolicyViolation(f"column {name} is not allowed", hint, code="COLUMN_NOT_ALLOWED")


def check_columns(
    statement: exp.Expr, dialect: str | SafetyProfile, entries: tuple[str, ...], default_schema: str | None
) -> None:
    if not entries:
        return
    profile = profiles.get(dialect)
    denied = _parse_denied(entries, profile)
    if not denied:
        return
    default = profile.identifier_key(default_schema) if default_schema else None
    by_alias: dict[str, set[str]] = {}
    protected_tables: set[int] = set()
    for table in statement.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        cols = _columns_of(table_name(table, profile), denied, default)
        if not cols:
            continue
        protected_tables.add(id(table))
        # Qualifiers are compared case-insensitively: erring on the side of denying.
        for key in {str(table.name).lower(), (table.alias or "").lower()}:
            if key:
                by_alias.setdefault(key, set()).update(cols)
    if not by_alias:
        return
    every = set().union(*by_alias.values())
    for column in statement.find_all(exp.Column):
        qualifier = (column.table or "").lower()
        if isinstance(column.this, exp.Star):
            if qualifier in by_alias:
                raise _deny_star(f"{column.table}.*")
            continue
        name = str(column.name).lower()
        if qualifier:
            if name in by_alias.get(qualifier, ()):
                raise _deny_column(f"{column.table}.{column.name}")
        elif name in every:
            raise _deny_column(column.name, qualified=False)
        elif profile.whole_row_references and name in by_alias:
            raise _deny_star(f"the whole-row reference {column.name}")
    for star in statement.find_all(exp.Star):
        parent = star.parent
        if isinstance(parent, exp.Returning):
            raise _deny_star("RETURNING *")
        if isinstance(parent, exp.Select) and _reads_protected_directly(parent, protected_tables):
            raise _deny_star("SELECT *")
    for join in statement.find_all(exp.Join):
        if join.args.get("method") and str(join.args["method"]).upper() == "NATURAL":
            raise _deny_star("NATURAL JOIN")
        for ident in join.args.get("using") or ():
            if str(getattr(ident, "name", ident)).lower() in every:
                raise _deny_column(str(getattr(ident, "name", ident)))


def _reads_protected_directly(select: exp.Select, protected: set[int]) -> bool:
    sources: list[exp.Expr] = []
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is not None:
        sources.append(from_.this)
        sources.extend(from_.expressions or ())
    sources.extend(join.this for join in select.args.get("joins") or ())
    return any(isinstance(src, exp.Table) and id(src) in protected for src in sources)
