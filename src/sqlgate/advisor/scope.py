"""Which real table each column of a statement belongs to.

The statement (a copy) is qualified with sqlglot's optimizer against the reflected
columns, so ``WHERE id = 1`` becomes ``WHERE c.id = 1`` and correlated references are
visible. When qualification fails (unknown columns, odd syntax) the plain copy is used
and only qualified or unambiguous columns resolve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from sqlglot.tokens import Tokenizer

from sqlgate.db.schema import TableInfo
from sqlgate.safety import tables as safety_tables


@dataclass
class Statement:
    """A statement prepared for analysis: the (qualified) tree and its real tables."""

    tree: exp.Expr
    dialect: str
    infos: dict[str, TableInfo]  # lower-case table name (schema.name or name) -> structure
    qualified: bool = False
    row_estimates: dict[str, float] = field(default_factory=dict)  # by TableInfo.name, lower-case
    suggested_tables: set[str] = field(default_factory=set)  # tables index_suggestions names (lower-case)

    def rows(self, info: TableInfo) -> float | None:
        return self.row_estimates.get(info.name.lower())


def prepare(statement: exp.Expr, dialect: str, infos: dict[str, TableInfo]) -> Statement:
    tree = statement.copy()
    schema: dict[str, object] = {
        info.name: {c.name: "text" for c in info.columns}
        for key, info in infos.items() if "." not in key
    }
    if len(schema) == len(infos):
        try:
            tree = qualify(
                statement.copy(), dialect=dialect, schema=schema, expand_stars=False,
                validate_qualify_columns=False, quote_identifiers=False, identify=False,
            )
            return Statement(tree, dialect, infos, qualified=True)
        except Exception:  # noqa: BLE001, S110 - analysis works on the plain tree then
            pass
    return Statement(tree, dialect, infos)


def real_table(table: exp.Table, statement: Statement) -> TableInfo | None:
    """The structure of a table reference, or None for CTEs, derived tables, functions."""
    if not isinstance(table.this, exp.Identifier):
        return None
    try:
        name = safety_tables.table_name(table, statement.dialect)
    except Exception:  # noqa: BLE001
        return None
    if name.schema is None and safety_tables.cte_visible(table, name.name, statement.dialect):
        return None
    return statement.infos.get(name.qualified().lower()) or statement.infos.get(name.name.lower())


def sources(node: exp.Expr, statement: Statement) -> dict[str, TableInfo]:
    """Real tables directly in the FROM/JOINs (or the target) of ``node``, by alias."""
    found: dict[str, TableInfo] = {}
    candidates: list[exp.Expr] = []
    from_ = node.args.get("from_") or node.args.get("from")
    if isinstance(from_, exp.From):
        candidates.append(from_.this)
    candidates.extend(join.this for join in node.args.get("joins") or [])
    if isinstance(node, (exp.Update, exp.Delete)):
        candidates.append(node.this)
    for candidate in candidates:
        if isinstance(candidate, exp.Table):
            info = real_table(candidate, statement)
            if info is not None:
                found[candidate.alias_or_name.lower()] = info
    return found


def resolve(column: exp.Column, scope_sources: dict[str, TableInfo]) -> tuple[TableInfo, str] | None:
    """(table, reflected column name) for a column of this scope, else None."""
    qualifier = column.table.lower() if column.table else ""
    if qualifier:
        info = scope_sources.get(qualifier)
        candidates = [info] if info is not None else []
    else:
        candidates = [i for i in scope_sources.values() if i.column(column.name) is not None]
    if len(candidates) != 1:
        return None
    found = candidates[0].column(column.name)
    return (candidates[0], found.name) if found is not None else None


def conjuncts(condition: exp.Expr | None) -> list[exp.Expr]:
    """The AND-ed parts of a condition (parentheses removed)."""
    if condition is None:
        return []
    if isinstance(condition, exp.Where):
        condition = condition.this
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.And):
        return conjuncts(condition.left) + conjuncts(condition.right)
    return [condition]


def scope_nodes(tree: exp.Expr) -> list[exp.Expr]:
    """Every SELECT of the statement, plus the statement itself when it is an UPDATE/DELETE."""
    nodes: list[exp.Expr] = [tree] if isinstance(tree, (exp.Update, exp.Delete)) else []
    nodes.extend(tree.find_all(exp.Select))
    return nodes


def owner_select(node: exp.Expr) -> exp.Expr | None:
    """The innermost SELECT/UPDATE/DELETE containing ``node``."""
    parent = node.parent
    while parent is not None and not isinstance(parent, (exp.Select, exp.Update, exp.Delete)):
        parent = parent.parent
    return parent


_SIMPLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOWER = re.compile(r"^[a-z_][a-z0-9_]*$")


def identifier(name: str, dialect: str, always: bool = False) -> str:
    """``name`` as SQL: quoted when it has to be (case, characters, keywords) or ``always``."""
    plain = _LOWER if dialect == "postgres" else _SIMPLE
    if not always and plain.match(name) and name.upper() not in Tokenizer.KEYWORDS:
        return name
    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


def table_sql(info: TableInfo, dialect: str, always: bool = False) -> str:
    name = identifier(info.name, dialect, always)
    return f"{identifier(info.schema, dialect, always)}.{name}" if info.schema else name
