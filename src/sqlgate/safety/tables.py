"""Which real tables a statement touches, and whether each is whitelisted.

CTE names are scoped the way the databases scope them: a CTE is visible in the body of
the statement that defines it and, inside the same ``WITH``, only to the CTEs after it
(or to all of them when the ``WITH`` is ``RECURSIVE``). A table reference that no
visible CTE explains is a real table and must be on the whitelist.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlglot import exp

from sqlgate.errors import PolicyViolation

# Case rules: PostgreSQL folds unquoted names to lower case and keeps quoted ones
# exact; MySQL (lower_case_table_names varies by platform) and SQLite compare names
# case-insensitively, so both compare lower-cased.
_CASE_SENSITIVE_WHEN_QUOTED = {"postgres"}


@dataclass(frozen=True)
class TableName:
    schema: str | None
    name: str

    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def _key(identifier: exp.Identifier | str | None, dialect: str) -> str | None:
    if identifier is None or identifier == "":
        return None
    if isinstance(identifier, str):
        return identifier.lower()
    if identifier.quoted and dialect in _CASE_SENSITIVE_WHEN_QUOTED:
        return str(identifier.this)
    return str(identifier.this).lower()


def table_name(table: exp.Table, dialect: str) -> TableName:
    if table.args.get("catalog"):
        # A three-part name reaches another database (or an attached one): never ours.
        raise PolicyViolation(
            f"table {table.sql(dialect)} names another database",
            "query tables of the connected database only",
            code="TABLE_NOT_ALLOWED",
        )
    schema = _key(table.args.get("db"), dialect)
    name = _key(table.args.get("this"), dialect)
    if name is None:
        raise PolicyViolation(
            f"cannot resolve the table in {table.sql(dialect)}",
            "name tables plainly",
            code="TABLE_NOT_ALLOWED",
        )
    return TableName(schema, name)


def parse_whitelist(entries: tuple[str, ...] | list[str], dialect: str) -> frozenset[TableName]:
    """Whitelist entries are table names as written in the dialect (quote to keep case)."""
    return _parse_whitelist(tuple(entries), dialect)


@lru_cache(maxsize=256)
def _parse_whitelist(entries: tuple[str, ...], dialect: str) -> frozenset[TableName]:
    names = set()
    for entry in entries:
        try:
            table = exp.to_table(entry, dialect=dialect)
        except Exception:  # noqa: S112 - a bad entry whitelists nothing
            continue
        if isinstance(table, exp.Table) and not table.args.get("catalog"):
            for schema in _entry_keys(table.args.get("db"), dialect):
                for name in _entry_keys(table.this, dialect):
                    if name:
                        names.add(TableName(schema, name))
    return frozenset(names)


def _entry_keys(identifier: exp.Identifier | None, dialect: str) -> set[str | None]:
    """An unquoted mixed-case PostgreSQL entry (``Events``) is ambiguous: folded it means
    ``events``, but names reflected at start-up arrive unquoted with their real case
    (the table ``"Events"``). The operator typed both readings, so both are whitelisted."""
    key = _key(identifier, dialect)
    keys: set[str | None] = {key}
    if (dialect in _CASE_SENSITIVE_WHEN_QUOTED and isinstance(identifier, exp.Identifier)
            and not identifier.quoted and str(identifier.this) != key):
        keys.add(str(identifier.this))
    return keys


def _cte_positions(with_: exp.With, dialect: str, memo: dict[int, dict[str, int]] | None) -> dict[str, int]:
    """CTE name -> position in ``with_`` (computed once per WITH when a memo is given)."""
    found = memo.get(id(with_)) if memo is not None else None
    if found is None:
        found = {}
        for position, cte in enumerate(with_.expressions):
            found.setdefault(_key(cte.args["alias"].this, dialect) or "", position)
        if memo is not None:
            memo[id(with_)] = found
    return found


def _cte_visible(
    table: exp.Table, name: str, dialect: str, memo: dict[int, dict[str, int]] | None = None
) -> bool:
    """True when ``table`` (unqualified) refers to a CTE in scope rather than a table.

    Linear in the depth of ``table``: with a shared ``memo`` a statement with thousands
    of CTEs is resolved in linear time, not quadratic.
    """
    child: exp.Expr = table
    node = table.parent
    while node is not None:
        with_ = node.args.get("with_") or node.args.get("with")
        if isinstance(with_, exp.With) and child is not with_ and name in _cte_positions(with_, dialect, memo):
            return True
        if isinstance(node, exp.With):
            positions = _cte_positions(node, dialect, memo)
            if name in positions:
                if node.args.get("recursive"):
                    return True
                # ``child`` is the CTE whose body holds the table: only earlier CTEs are visible.
                own = child.index if isinstance(child, exp.CTE) and child.parent is node else None
                position = own if own is not None else len(node.expressions)
                if positions[name] < position:
                    return True
            # Skip the owner statement's own WITH check: go straight past it.
            child = node.parent if node.parent is not None else node
            node = child.parent
            continue
        child = node
        node = node.parent
    return False


def referenced_tables(statement: exp.Expr, dialect: str) -> list[TableName]:
    """Every real table referenced anywhere in ``statement`` (CTE references removed)."""
    found: list[TableName] = []
    memo: dict[int, dict[str, int]] = {}
    for table in statement.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            # A table function (``generate_series(...)``) or a dynamic name: the
            # function rules decide about functions; anything else is unknown.
            if isinstance(table.this, exp.Func):
                continue
            raise PolicyViolation(
                f"cannot resolve the table reference {table.sql(dialect)}",
                "name tables plainly",
                code="TABLE_NOT_ALLOWED",
            )
        name = table_name(table, dialect)
        if name.schema is None and name.name == "dual" and dialect == "mysql" and not table.this.quoted:
            # MySQL's DUAL is a keyword, but sqlglot re-renders it as `DUAL` in backticks,
            # which names a real table: refuse rather than send something else.
            raise PolicyViolation(
                "FROM DUAL is not supported", "leave FROM DUAL out: SELECT NOW() works alone",
                code="TABLE_NOT_ALLOWED",
            )
        if name.schema is None and not _is_write_target(table) and _cte_visible(table, name.name, dialect, memo):
            continue
        found.append(name)
    return found


_DML_TARGETS = (exp.Insert, exp.Update, exp.Delete, exp.Merge)


def _is_write_target(table: exp.Table) -> bool:
    """The table an INSERT/UPDATE/DELETE/MERGE writes is always a real table: the
    databases never resolve a write target to a CTE (``WITH t AS (...) INSERT INTO t``
    writes the real ``t``), so a CTE of the same name must not hide it."""
    node: exp.Expr = table
    parent = table.parent
    if isinstance(parent, exp.Schema) and parent.this is table:
        node, parent = parent, parent.parent
    if not isinstance(parent, _DML_TARGETS):
        return False
    return parent.this is node or any(t is node for t in parent.args.get("tables") or ())


def check_tables(
    tables: list[TableName],
    whitelist: frozenset[TableName],
    default_schema: str | None,
    dialect: str,
) -> None:
    default = _key(default_schema, dialect) if default_schema else None
    for table in tables:
        if _allowed(table, whitelist, default):
            continue
        shown = sorted(t.qualified() for t in whitelist)
        listed = ", ".join(shown[:_HINT_TABLES])
        if len(shown) > _HINT_TABLES:
            listed += f" and {len(shown) - _HINT_TABLES} more (describe_schema lists them all)"
        hint = ("allowed tables: " + listed) if shown else "no tables are whitelisted"
        if _is_catalog(table):
            hint = "system catalogs are not available; use the describe_schema tool. " + hint
        raise PolicyViolation(f"table {table.qualified()} is not allowed", hint, code="TABLE_NOT_ALLOWED")


_HINT_TABLES = 40  # a hint names at most this many allowed tables

_CATALOG_SCHEMAS = {"pg_catalog", "information_schema", "mysql", "performance_schema", "sys", "pg_toast"}


def _is_catalog(table: TableName) -> bool:
    return (table.schema or "").lower() in _CATALOG_SCHEMAS or table.name.lower().startswith(("pg_", "sqlite_"))


def _allowed(table: TableName, whitelist: frozenset[TableName], default: str | None) -> bool:
    if table in whitelist:
        return True
    if table.schema is None:
        return default is not None and TableName(default, table.name) in whitelist
    return table.schema == default and TableName(None, table.name) in whitelist
