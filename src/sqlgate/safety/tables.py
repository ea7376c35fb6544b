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
from sqlgate.safety import profiles
from sqlgate.safety.profiles import SafetyProfile


@dataclass(frozen=True)
class TableName:
    schema: str | None
    name: str

    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def table_key(identifier: exp.Identifier | str | None, dialect: str | SafetyProfile) -> str | None:
    """The key a table or schema name is compared by, under the dialect's case rules."""
    return profiles.get(dialect).identifier_key(identifier)


def table_name(table: exp.Table, dialect: str | SafetyProfile) -> TableName:
    profile = profiles.get(dialect)
    if table.args.get("catalog"):
        # A three-part name reaches another database (or an attached one): never ours.
        raise PolicyViolation(
            f"table {table.sql(profile.sqlglot_dialect)} names another database",
            "query tables of the connected database only",
            code="TABLE_NOT_ALLOWED",
        )
    schema = profile.identifier_key(table.args.get("db"))
    name = profile.identifier_key(table.args.get("this"))
    if name is None:
        raise PolicyViolation(
            f"cannot resolve the table in {table.sql(profile.sqlglot_dialect)}",
            "name tables plainly",
            code="TABLE_NOT_ALLOWED",
        )
    return TableName(schema, name)


def parse_whitelist(entries: tuple[str, ...] | list[str], dialect: str | SafetyProfile) -> frozenset[TableName]:
    """Whitelist entries are table names as written in the dialect (quote to keep case)."""
    return _parse_whitelist(tuple(entries), profiles.get(dialect))


@lru_cache(maxsize=256)
def _parse_whitelist(entries: tuple[str, ...], profile: SafetyProfile) -> frozenset[TableName]:
    names = set()
    for entry in entries:
        try:
            table = exp.to_table(entry, dialect=profile.sqlglot_dialect)
        except Exception:  # noqa: S112 - a bad entry whitelists nothing
            continue
        if isinstance(table, exp.Table) and not table.args.get("catalog"):
            for schema in profile.identifier_keys(table.args.get("db")):
                for name in profile.identifier_keys(table.this):
                    if name:
                        names.add(TableName(schema, name))
    return frozenset(names)


def _cte_positions(
    with_: exp.With, profile: SafetyProfile, memo: dict[int, dict[str, int]] | None
) -> dict[str, int]:
    """CTE name -> position in ``with_`` (computed once per WITH when a memo is given)."""
    found = memo.get(id(with_)) if memo is not None else None
    if found is None:
        found = {}
        for position, cte in enumerate(with_.expressions):
            found.setdefault(profile.identifier_key(cte.args["alias"].this) or "", position)
        if memo is not None:
            memo[id(with_)] = found
    return found


def cte_visible(
    table: exp.Table, name: str, dialect: str | SafetyProfile, memo: dict[int, dict[str, int]] | None = None
) -> bool:
    """True when ``table`` (unqualified) refers to a CTE in scope rather than a table.

    Linear in the depth of ``table``: with a shared ``memo`` a statement with thousands
    of CTEs is resolved in linear time, not quadratic.
    """
    profile = profiles.get(dialect)
    child: exp.Expr = table
    node = table.parent
    while node is not None:
        with_ = node.args.get("with_") or node.args.get("with")
        if isinstance(with_, exp.With) and child is not with_ and name in _cte_positions(with_, profile, memo):
            return True
        if isinstance(node, exp.With):
            positions = _cte_positions(node, profile, memo)
            if name in positions:
                if node.args.get("recursive"):
                    return True
                # ``child`` is the CTE whose body holds the table: only earlier CTEs are visible.
                own = child.index if isinstance(child, exp.CTE) and child.parent is node else None
                position = own if own is not None else len(node.expressions)
                if positions[name] < position:
                    return True
                # SQLite also resolves a later sibling, but a CTE's own name inside its body
                # is a circular reference there: not the CTE, so judged as the real table.
                if profile.ctes_see_all_siblings and positions[name] != own:
                    return True
            # Skip the owner statement's own WITH check: go straight past it.
            child = node.parent if node.parent is not None else node
            node = child.parent
            continue
        child = node
        node = node.parent
    return False


def referenced_tables(statement: exp.Expr, dialect: str | SafetyProfile) -> list[TableName]:
    """Every real table referenced anywhere in ``statement`` (CTE references removed)."""
    profile = profiles.get(dialect)
    found: list[TableName] = []
    memo: dict[int, dict[str, int]] = {}
    for member in statement.find_all(exp.In):
        if member.args.get("field") is not None:
            # SQLite reads ``x IN name`` (no parentheses) as ``x IN (SELECT * FROM name)``
            # and ``x IN f(...)`` as a table function; sqlglot reads a column or a call.
            # Admitted: a parenthesised list or subquery, whose tables are resolved.
            raise PolicyViolation(
                f"{member.sql(profile.sqlglot_dialect)[:80]}: IN followed by a bare name or call reads "
                "a whole table, which sqlgate does not resolve",
                "write the list or subquery in parentheses: x IN (SELECT column FROM table)",
                code="TABLE_NOT_ALLOWED",
            )
    for table in statement.find_all(exp.Table):
        if table.this is None and table.args.get("rows_from"):
            continue  # ROWS FROM (f(...), ...): its table functions are found on their own
        if not isinstance(table.this, exp.Identifier):
            # A table function (``generate_series(...)``) or a dynamic name: the
            # function rules decide about functions; anything else is unknown.
            if isinstance(table.this, exp.Func):
                continue
            raise PolicyViolation(
                f"cannot resolve the table reference {table.sql(profile.sqlglot_dialect)}",
                "name tables plainly",
                code="TABLE_NOT_ALLOWED",
            )
        name = table_name(table, profile)
        if name.schema is None and name.name in profile.keyword_tables and not table.this.quoted:
            # MySQL's DUAL is a keyword, but sqlglot re-renders it as `DUAL` in backticks,
            # which names a real table: refuse rather than send something else.
            raise PolicyViolation(
                f"FROM {name.name.upper()} is not supported",
                f"leave FROM {name.name.upper()} out: SELECT NOW() works alone",
                code="TABLE_NOT_ALLOWED",
            )
        if name.schema is None and not _is_write_target(table) and cte_visible(table, name.name, profile, memo):
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
    dialect: str | SafetyProfile,
) -> None:
    profile = profiles.get(dialect)
    default = profile.identifier_key(default_schema) if default_schema else None
    for table in tables:
        if is_allowed(table, whitelist, default):
            continue
        shown = sorted(t.qualified() for t in whitelist)
        listed = ", ".join(shown[:_HINT_TABLES])
        if len(shown) > _HINT_TABLES:
            listed += f" and {len(shown) - _HINT_TABLES} more (describe_schema lists them all)"
        hint = ("allowed tables: " + listed) if shown else "no tables are whitelisted"
        if profile.is_catalog(table.schema, table.name):
            hint = "system catalogs are not available; use the describe_schema tool. " + hint
        raise PolicyViolation(f"table {table.qualified()} is not allowed", hint, code="TABLE_NOT_ALLOWED")


_HINT_TABLES = 40  # a hint names at most this many allowed tables


def is_allowed(table: TableName, whitelist: frozenset[TableName], default: str | None) -> bool:
    """Whether ``table`` is on ``whitelist``; ``default`` is the default schema's key
    (``table_key(policy.default_schema, dialect)``), which bare names resolve to."""
    if table in whitelist:
        return True
    if table.schema is None:
        return default is not None and TableName(default, table.name) in whitelist
    return table.schema == default and TableName(None, table.name) in whitelist
