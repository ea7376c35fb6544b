"""Index suggestions from the statement's predicates, checked against existing indexes.

Per table and per SELECT (or UPDATE/DELETE), columns go in B-tree order: equality
columns first (``=``, ``IN`` lists, ``IS NULL``, join keys, correlated references), then
one range column (``<``, ``BETWEEN``, ``LIKE 'prefix%'``), then the ORDER BY columns when
nothing else breaks the order. A suggestion that an existing index (or the primary key)
already serves — same columns, or a prefix of it — is reported as covered, never as new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp

from sqlgate.advisor.models import CoveredIndex, IndexSuggestion
from sqlgate.advisor.scope import Statement, conjuncts, identifier, resolve, scope_nodes, sources, table_sql
from sqlgate.db.schema import TableInfo

MIN_ROWS = 1_000  # below this a table is read faster than an index is walked
MAX_COLUMNS = 4
_RANGE = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)


@dataclass
class _Wanted:
    info: TableInfo
    equality: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)
    join: list[str] = field(default_factory=list)

    def add(self, bucket: list[str], column: str) -> None:
        if column.lower() not in (c.lower() for c in bucket):
            bucket.append(column)

    def columns(self) -> list[str]:
        # Join keys matter only when nothing else narrows the table: then an index on
        # them lets a nested loop seek instead of scanning per outer row.
        chosen = list(self.equality or self.join)
        seen = {c.lower() for c in chosen}
        first_range = next((c for c in self.ranges if c.lower() not in seen), None)
        if first_range:
            chosen.append(first_range)
        sort = [c for c in self.sort if c.lower() not in seen]
        if sort and (first_range is None or sort[0].lower() == first_range.lower()):
            chosen.extend(c for c in sort if c.lower() not in {x.lower() for x in chosen})
        return chosen[:MAX_COLUMNS]


def _is_value(node: exp.Expr, local: dict[str, TableInfo]) -> bool:
    """A constant for this scope: literal, placeholder, or a column of an outer scope."""
    if isinstance(node, (exp.Literal, exp.Placeholder, exp.Parameter, exp.Null, exp.Boolean)):
        return True
    if isinstance(node, exp.Neg | exp.Cast | exp.Paren):
        return _is_value(node.this, local)
    if isinstance(node, exp.Column):
        return resolve(node, local) is None and bool(node.table) and node.table.lower() not in local
    return False


def _wanted(statement: Statement) -> list[_Wanted]:
    found: list[_Wanted] = []
    for node in scope_nodes(statement.tree):
        local = sources(node, statement)
        if not local:
            continue
        per_table: dict[str, _Wanted] = {}

        def bucket(info: TableInfo, per_table: dict[str, _Wanted] = per_table) -> _Wanted:
            return per_table.setdefault(info.name.lower(), _Wanted(info))

        joined = {j.this.alias_or_name.lower() for j in node.args.get("joins") or [] if isinstance(j.this, exp.Table)}
        predicates = conjuncts(node.args.get("where"))
        for join in node.args.get("joins") or []:
            predicates.extend(conjuncts(join.args.get("on")))
        for predicate in predicates:
            _classify(predicate, local, joined, bucket)
        order = node.args.get("order")
        if isinstance(order, exp.Order) and len(local) == 1:
            for ordered in order.expressions:
                target = ordered.this
                resolved = resolve(target, local) if isinstance(target, exp.Column) else None
                if resolved is None:
                    break
                bucket(resolved[0]).add(bucket(resolved[0]).sort, resolved[1])
        found.extend(per_table.values())
    return found


def _classify(
    predicate: exp.Expr, local: dict[str, TableInfo], joined: set[str], bucket: Callable[[TableInfo], _Wanted]
) -> None:
    def note(column: exp.Expr, kind: str) -> None:
        resolved = resolve(column, local) if isinstance(column, exp.Column) else None
        if resolved is not None:
            wanted = bucket(resolved[0])
            wanted.add(getattr(wanted, kind), resolved[1])

    if isinstance(predicate, exp.EQ):
        for col, other in ((predicate.left, predicate.right), (predicate.right, predicate.left)):
            if not isinstance(col, exp.Column):
                continue
            if _is_value(other, local):
                note(col, "equality")
            elif isinstance(other, exp.Column) and resolve(other, local) and col.table.lower() in joined:
                note(col, "join")  # a join key of the joined side
    elif isinstance(predicate, exp.In) and not predicate.args.get("query"):
        if all(_is_value(v, local) for v in predicate.expressions):
            note(predicate.this, "equality")
    elif isinstance(predicate, exp.Is) and not predicate.args.get("negate"):
        note(predicate.this, "equality")
    elif isinstance(predicate, _RANGE):
        bound = predicate.args.get("low" if isinstance(predicate, exp.Between) else "expression")
        target: exp.Expr = predicate.this
        if not isinstance(target, exp.Column) and isinstance(bound, exp.Column):
            target, bound = bound, target
        if bound is not None and _is_value(bound, local):
            note(target, "ranges")
    elif isinstance(predicate, exp.Like):
        pattern = predicate.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string and pattern.this[:1] not in ("%", "_", ""):
            note(predicate.this, "ranges")


def existing_indexes(info: TableInfo) -> list[tuple[str, tuple[str, ...]]]:
    found = [(i.name or "unnamed index", i.columns) for i in info.indexes if i.columns]
    if info.primary_key:
        found.insert(0, ("PRIMARY KEY", info.primary_key))
    found.extend(("UNIQUE" + str(cols), cols) for cols in info.unique_constraints
                 if cols not in [c for _, c in found])
    return found


def covering_index(info: TableInfo, columns: list[str], equality: int) -> str | None:
    """The existing index that already serves ``columns`` (the first ``equality`` in any order)."""
    wanted = [c.lower() for c in columns]
    for name, index_columns in existing_indexes(info):
        have = [c.lower() for c in index_columns]
        if len(have) < len(wanted):
            continue
        if set(have[:equality]) == set(wanted[:equality]) and have[equality:len(wanted)] == wanted[equality:]:
            return name
    return None


def suggest(statement: Statement) -> tuple[list[IndexSuggestion], list[CoveredIndex]]:
    suggestions: list[IndexSuggestion] = []
    covered: list[CoveredIndex] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for wanted in _wanted(statement):
        columns = wanted.columns()
        info = wanted.info
        if info.is_view:
            continue  # views cannot be indexed; their base tables are not visible here
        key = (info.name.lower(), tuple(c.lower() for c in columns))
        if not columns or key in seen:
            continue
        seen.add(key)
        rows = statement.rows(info)
        equality = len([c for c in columns if c in (wanted.equality or wanted.join)])
        existing = covering_index(info, columns, equality)
        if existing is not None:
            covered.append(CoveredIndex(table=info.name, columns=columns, existing_index=existing))
            continue
        if rows is not None and rows < MIN_ROWS:
            continue
        suggestions.append(
            IndexSuggestion(
                table=info.name,
                columns=columns,
                create_statement=create_statement(info, columns, statement.dialect),
                reason=_reason(wanted, columns, rows),
            )
        )
    return suggestions, covered


def _reason(wanted: _Wanted, columns: list[str], rows: float | None) -> str:
    parts = []
    eq = [c for c in columns if c in (wanted.equality or wanted.join)]
    rng = [c for c in columns if c in wanted.ranges and c not in eq]
    srt = [c for c in columns if c not in eq and c not in rng]
    if eq:
        parts.append("equality on " + ", ".join(eq))
    if rng:
        parts.append("range on " + ", ".join(rng))
    if srt:
        parts.append("ORDER BY " + ", ".join(srt) + " (rows come out sorted, no sort step)")
    size = f" (~{int(rows):,} rows)" if rows else ""
    return "; ".join(parts) + f": lets the database seek into {wanted.info.name}{size} instead of reading all of it"


def create_statement(info: TableInfo, columns: list[str], dialect: str) -> str:
    name = "ix_" + "_".join([info.name, *columns]).lower()
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)[:60]
    parts = []
    for column in columns:
        text = identifier(column, dialect)
        found = info.column(column)
        if dialect == "mysql" and found is not None and any(t in found.type.upper() for t in ("TEXT", "BLOB")):
            text += "(191)"  # MySQL indexes TEXT/BLOB only by a prefix (191 chars fit utf8mb4 limits)
        parts.append(text)
    return f"CREATE INDEX {identifier(name, dialect)} ON {table_sql(info, dialect)} ({', '.join(parts)})"
