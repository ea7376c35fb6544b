"""Index candidates from every predicate position, checked against existing indexes.

Per SELECT (or UPDATE/DELETE) and per table reference, a candidate's keys go in B-tree
order: equality keys first (``=``, ``IN`` lists, ``IS NULL``, correlated references),
then one range key (``<``, ``BETWEEN``, ``LIKE 'prefix%'``), then ORDER BY (or GROUP BY)
columns when nothing else breaks the order. Beside that "filter" candidate a table gets:

* a join candidate: its join keys (on the FROM side as well as the JOIN side: a nested
  loop seeks into whichever side is inner) after its equality keys;
* one candidate per OR branch, tried together (a BitmapOr / index merge needs them all);
* expression keys for ``lower(col)``/``upper(col)`` filters where the server indexes
  expressions, and pattern keys for ``LIKE 'prefix%'`` (PostgreSQL ``text_pattern_ops``,
  SQLite ``COLLATE NOCASE``);
* the columns the query reads from the table, offered as INCLUDE columns where the
  server has them (kept only when the planner shows an index-only scan pays).

Where the database can plan hypothetical indexes, ``proof`` picks the set; elsewhere the
``primary`` candidates are offered unverified. A candidate an existing index (or the
primary key) already serves — same columns, or a prefix of it — is reported as covered.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from sqlgate.advisor.models import CoveredIndex
from sqlgate.advisor.scope import Statement, conjuncts, identifier, scope_nodes, sources, table_sql
from sqlgate.db.dialects.plans import IndexSyntax
from sqlgate.db.schema import TableInfo

MIN_ROWS = 1_000  # below this a table is read faster than an index is walked
MAX_COLUMNS = 4
MAX_INCLUDE = 4
_RANGE = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)
_CASE_FUNCS = (exp.Lower, exp.Upper)
_DEFAULT_SYNTAX = {
    "postgres": IndexSyntax(include=True, expressions=True, expression_parens=True, prefix_like="pattern_ops",
                            costs=True),
    "sqlite": IndexSyntax(expressions=True, prefix_like="nocase"),
    "mysql": IndexSyntax(expressions=True, expression_parens=True, text_prefix=191),
}


@dataclass(frozen=True)
class Key:
    """One key part: a column, an expression over one column, or a column for LIKE 'prefix%'."""

    column: str
    expression: str = ""  # unqualified SQL, e.g. lower(email)
    like: bool = False

    @property
    def label(self) -> str:
        return self.expression or self.column

    @property
    def plain(self) -> bool:
        return not self.expression and not self.like


@dataclass
class Candidate:
    info: TableInfo
    keys: tuple[Key, ...]
    equality: int  # how many leading keys are equality keys (their order is free)
    reason: str
    include: tuple[str, ...] = ()
    covering: tuple[str, ...] = ()  # columns the query reads from the table: INCLUDE material
    group: str | None = None  # OR branches of one predicate: they only work together
    primary: bool = True  # offered when the database cannot verify
    # An existing index already serves the equality keys: only a planner with costs can
    # tell whether the extra columns pay (SQLite and MySQL skip such candidates).
    extends: str | None = None
    name: str = ""
    create_statement: str = ""

    @property
    def columns(self) -> list[str]:
        return [k.label for k in self.keys]

    def identity(self) -> tuple[Any, ...]:
        return (self.info.name.lower(), self.create_statement.lower())


@dataclass
class _Wanted:
    info: TableInfo
    alias: str
    equality: list[Key] = field(default_factory=list)
    ranges: list[Key] = field(default_factory=list)
    sort: list[Key] = field(default_factory=list)
    join: list[Key] = field(default_factory=list)
    joined_side: bool = False  # the table is the target of a JOIN clause (not the FROM item)

    def add(self, bucket: list[Key], key: Key) -> None:
        if key not in bucket:
            bucket.append(key)

    def empty(self) -> bool:
        return not (self.equality or self.ranges or self.sort or self.join)


def syntax_for(dialect: str) -> IndexSyntax:
    """The default shapes of a sqlglot dialect (tests and offline use; servers say theirs)."""
    return _DEFAULT_SYNTAX.get(dialect, IndexSyntax())


# ----------------------------------------------------------------- what is filtered


def _alias_of(column: exp.Column, local: dict[str, TableInfo]) -> tuple[str, str] | None:
    """(alias, reflected column name) of a column of this scope, else None."""
    qualifier = column.table.lower() if column.table else ""
    if qualifier:
        aliases = [qualifier] if qualifier in local else []
    else:
        aliases = [a for a, info in local.items() if info.column(column.name) is not None]
    if len(aliases) != 1:
        return None
    found = local[aliases[0]].column(column.name)
    return (aliases[0], found.name) if found is not None else None


def _is_value(node: exp.Expr, local: dict[str, TableInfo]) -> bool:
    """A constant for this scope: literal, placeholder, or a column of an outer scope."""
    if isinstance(node, (exp.Literal, exp.Placeholder, exp.Parameter, exp.Null, exp.Boolean)):
        return True
    if isinstance(node, exp.Neg | exp.Cast | exp.Paren):
        return _is_value(node.this, local)
    if isinstance(node, exp.Column):
        return _alias_of(node, local) is None and bool(node.table) and node.table.lower() not in local
    return False


def unqualified_sql(node: exp.Expr, dialect: str) -> str:
    """``node`` without table qualifiers, as CREATE INDEX accepts it."""
    def strip(inner: exp.Expr) -> exp.Expr:
        if isinstance(inner, exp.Column):
            return exp.column(inner.name, quoted=inner.this.quoted if isinstance(inner.this, exp.Identifier) else None)
        return inner

    return node.transform(strip, copy=True).sql(dialect=dialect, normalize_functions="lower")


def _key(node: exp.Expr, local: dict[str, TableInfo], statement: Statement,
         syntax: IndexSyntax) -> tuple[str, Key] | None:
    """(alias, key) for a filtered side: a column, or lower/upper(column) where expressions index."""
    if isinstance(node, exp.Column):
        found = _alias_of(node, local)
        return (found[0], Key(found[1])) if found else None
    if isinstance(node, _CASE_FUNCS) and isinstance(node.this, exp.Column) and syntax.expressions:
        found = _alias_of(node.this, local)
        if found is None:
            return None
        inner = node.copy()
        inner.set("this", exp.column(found[1]))
        return found[0], Key(found[1], expression=unqualified_sql(inner, statement.dialect))
    return None


def _prefix_pattern(pattern: exp.Expr, params: dict[str, Any]) -> bool:
    text = None
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        text = pattern.this
    elif isinstance(pattern, exp.Placeholder) and isinstance(params.get(pattern.name), str):
        text = params[pattern.name]
    return bool(text) and text[:1] not in ("%", "_")  # type: ignore[index]


def _classify(
    predicate: exp.Expr, local: dict[str, TableInfo], bucket: Any, statement: Statement, params: dict[str, Any],
    syntax: IndexSyntax,
) -> None:
    def note(side: exp.Expr, kind: str, like: bool = False) -> None:
        found = _key(side, local, statement, syntax)
        if found is None:
            return
        alias, key = found
        if like and key.plain:
            key = Key(key.column, like=syntax.prefix_like != "plain")
        wanted = bucket(alias)
        if wanted is not None:
            wanted.add(getattr(wanted, kind), key)

    if isinstance(predicate, exp.EQ):
        for side, other in ((predicate.left, predicate.right), (predicate.right, predicate.left)):
            if _is_value(other, local):
                note(side, "equality")
            elif isinstance(side, exp.Column) and isinstance(other, exp.Column):
                mine, theirs = _alias_of(side, local), _alias_of(other, local)
                if mine and theirs and mine[0] != theirs[0]:
                    note(side, "join")  # both sides: whichever ends up inner seeks on it
    elif isinstance(predicate, exp.In):
        if predicate.args.get("query"):
            note(predicate.this, "join")  # a semi-join key
        elif all(_is_value(v, local) for v in predicate.expressions):
            note(predicate.this, "equality")
    elif isinstance(predicate, exp.Is) and not predicate.args.get("negate"):
        note(predicate.this, "equality")
    elif isinstance(predicate, _RANGE):
        bound = predicate.args.get("low" if isinstance(predicate, exp.Between) else "expression")
        target: exp.Expr = predicate.this
        if _key(target, local, statement, syntax) is None and bound is not None and \
                _key(bound, local, statement, syntax) is not None:
            target, bound = bound, target
        if bound is not None and _is_value(bound, local):
            note(target, "ranges")
    elif isinstance(predicate, exp.Like) and _prefix_pattern(predicate.expression, params):
        note(predicate.this, "ranges", like=True)


def _read_columns(node: exp.Expr, alias: str, info: TableInfo, local: dict[str, TableInfo]) -> tuple[str, ...] | None:
    """The columns of ``alias`` this scope reads (None when it reads them all: SELECT *)."""
    found: list[str] = []
    for column in node.find_all(exp.Column):
        if isinstance(column.this, exp.Star):
            if not column.table or column.table.lower() == alias:
                return None
            continue
        resolved = _alias_of(column, local)
        if resolved and resolved[0] == alias and resolved[1] not in found:
            found.append(resolved[1])
    if any(isinstance(e, exp.Star) for e in node.expressions if hasattr(node, "expressions")):
        return None
    return tuple(found)


# --------------------------------------------------------------- the candidates


def _ordered_keys(equality: list[Key], first: list[Key], ranges: list[Key], sort: list[Key]) -> list[Key]:
    chosen = list(equality)
    for key in first:
        if key not in chosen:
            chosen.append(key)
    first_range = next((k for k in ranges if k not in chosen), None)
    if first_range:
        chosen.append(first_range)
    rest = [k for k in sort if k not in chosen]
    if rest and (first_range is None or (sort and sort[0] == first_range)):
        chosen.extend(rest)
    return chosen[:MAX_COLUMNS]


def _from_wanted(wanted: _Wanted, covering: tuple[str, ...] | None, rows: float | None) -> list[Candidate]:
    found: list[Candidate] = []
    size = f" (~{int(rows):,} rows)" if rows else ""
    name = wanted.info.name
    filter_keys = _ordered_keys(wanted.equality, [], wanted.ranges, wanted.sort)
    if filter_keys:
        found.append(Candidate(
            wanted.info, tuple(filter_keys), len(wanted.equality),
            _reason(filter_keys, wanted) + f": lets the database seek into {name}{size} instead of reading all of it",
            covering=covering or (),
        ))
    if wanted.join:
        join_keys = _ordered_keys(wanted.equality, wanted.join, wanted.ranges, [])
        if join_keys != filter_keys:
            found.append(Candidate(
                wanted.info, tuple(join_keys), len(wanted.equality) + len(wanted.join),
                f"join key {', '.join(k.label for k in wanted.join)} of {name}{size}"
                + (f" (with {_reason(join_keys, wanted)})" if wanted.equality or wanted.ranges else "")
                + ": a nested loop seeks into it per outer row instead of scanning all of it",
                covering=covering or (),
                # Unverified advice stays short: the join key is offered when nothing else
                # narrows the table (on either side of the join: the FROM-side foreign key too).
                primary=not filter_keys,
            ))
    return found


def _reason(keys: list[Key], wanted: _Wanted) -> str:
    parts = []
    eq = [k.label for k in keys if k in wanted.equality]
    rng = [k.label + (" (LIKE prefix)" if k.like else "") for k in keys if k in wanted.ranges and k not in wanted.equality]
    srt = [k.label for k in keys if k in wanted.sort and k not in wanted.equality and k not in wanted.ranges]
    if eq:
        parts.append("equality on " + ", ".join(eq))
    if rng:
        parts.append("range on " + ", ".join(rng))
    if srt:
        parts.append("ORDER BY/GROUP BY " + ", ".join(srt) + " (rows come out sorted, no sort step)")
    return "; ".join(parts) or "lookup"


def candidates(statement: Statement, params: dict[str, Any] | None = None,
               syntax: IndexSyntax | None = None) -> tuple[list[Candidate], list[CoveredIndex]]:
    """Every index worth trying for ``statement``, and what existing indexes already serve."""
    params = params or {}
    syntax = syntax or syntax_for(statement.dialect)
    found: list[Candidate] = []
    or_groups = 0
    for node in scope_nodes(statement.tree):
        local = sources(node, statement)
        if not local:
            continue
        per_alias: dict[str, _Wanted] = {}
        joined = {j.this.alias_or_name.lower() for j in node.args.get("joins") or [] if isinstance(j.this, exp.Table)}

        def bucket(alias: str, per_alias: dict[str, _Wanted] = per_alias, local: dict[str, TableInfo] = local,
                   joined: set[str] = joined) -> _Wanted:
            return per_alias.setdefault(alias, _Wanted(local[alias], alias, joined_side=alias in joined))

        predicates = conjuncts(node.args.get("where"))
        for join in node.args.get("joins") or []:
            predicates.extend(conjuncts(join.args.get("on")))
        branches_found: list[tuple[str, list[list[Candidate]]]] = []
        for predicate in predicates:
            if isinstance(predicate, exp.Or):
                branch_groups = _or_branches(predicate, local, statement, params, syntax)
                if branch_groups is not None:
                    branches_found.append(branch_groups)
                continue
            _classify(predicate, local, bucket, statement, params, syntax)
        _order_and_group(node, local, bucket)
        for alias, wanted in per_alias.items():
            if wanted.empty() or wanted.info.is_view:
                continue
            covering = _read_columns(node, alias, wanted.info, local)
            found.extend(_from_wanted(wanted, covering, statement.rows(wanted.info)))
        for _alias, groups in branches_found:
            or_groups += 1
            for branch in groups:
                for candidate in branch:
                    candidate.group = f"or{or_groups}"
                    candidate.reason = "one index per OR branch (combined by the planner): " + candidate.reason
                    found.append(candidate)
    return _finish(statement, found, syntax)


def _or_branches(predicate: exp.Or, local: dict[str, TableInfo], statement: Statement, params: dict[str, Any],
                 syntax: IndexSyntax) -> tuple[str, list[list[Candidate]]] | None:
    """One filter candidate per branch when every branch filters the same table."""
    branches: list[exp.Expr] = []

    def flatten(node: exp.Expr) -> None:
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Or):
            flatten(node.left)
            flatten(node.right)
        else:
            branches.append(node)

    flatten(predicate)
    alias_seen: set[str] = set()
    groups: list[list[Candidate]] = []
    for branch in branches:
        per_alias: dict[str, _Wanted] = {}

        def bucket(alias: str, per_alias: dict[str, _Wanted] = per_alias) -> _Wanted:
            return per_alias.setdefault(alias, _Wanted(local[alias], alias))

        for part in conjuncts(branch):
            _classify(part, local, bucket, statement, params, syntax)
        usable = {a: w for a, w in per_alias.items() if w.equality or w.ranges}
        if len(usable) != 1:
            return None
        alias, wanted = next(iter(usable.items()))
        alias_seen.add(alias)
        wanted.join = []
        groups.append(_from_wanted(wanted, None, statement.rows(wanted.info))[:1])
    if len(alias_seen) != 1 or len(groups) < 2:
        return None
    return next(iter(alias_seen)), groups


def _order_and_group(node: exp.Expr, local: dict[str, TableInfo], bucket: Any) -> None:
    """ORDER BY (else GROUP BY) columns of a one-table scope: an index can deliver the order."""
    if len(local) != 1:
        return
    order = node.args.get("order")
    group = node.args.get("group")
    items: list[exp.Expr] = []
    if isinstance(order, exp.Order):
        items = [o.this for o in order.expressions]
    elif isinstance(group, exp.Group):
        items = list(group.expressions)
    for item in items:
        resolved = _alias_of(item, local) if isinstance(item, exp.Column) else None
        if resolved is None:
            break
        wanted = bucket(resolved[0])
        wanted.add(wanted.sort, Key(resolved[1]))


def _finish(statement: Statement, found: list[Candidate],
            syntax: IndexSyntax) -> tuple[list[Candidate], list[CoveredIndex]]:
    kept: list[Candidate] = []
    covered: list[CoveredIndex] = []
    seen: set[tuple[Any, ...]] = set()
    for candidate in found:
        info = candidate.info
        candidate.name, candidate.create_statement = render(info, candidate.keys, statement.dialect, syntax)
        key = candidate.identity()
        if key in seen:
            continue
        seen.add(key)
        existing = _existing(info, candidate)
        if existing is not None:
            covered.append(CoveredIndex(table=info.name, columns=candidate.columns, existing_index=existing))
            continue
        rows = statement.rows(info)
        if rows is not None and rows < MIN_ROWS:
            continue
        plain_eq = [k.column for k in candidate.keys[:candidate.equality] if k.plain]
        if plain_eq and len(plain_eq) == candidate.equality:
            candidate.extends = covering_index(info, plain_eq, len(plain_eq))
            if candidate.extends:
                candidate.primary = False
        kept.append(candidate)
    # An OR group is useful only whole: drop it if any branch is missing (too small, ...).
    groups = {c.group for c in found if c.group}
    for group in groups:
        wanted_members = [c for c in found if c.group == group]
        if any(c not in kept and not _served(c, covered) for c in wanted_members):
            kept = [c for c in kept if c.group != group]
    return kept, covered


def _served(candidate: Candidate, covered: list[CoveredIndex]) -> bool:
    return any(c.table == candidate.info.name and c.columns == candidate.columns for c in covered)


def _existing(info: TableInfo, candidate: Candidate) -> str | None:
    if all(k.plain for k in candidate.keys):
        return covering_index(info, candidate.columns, candidate.equality)
    # Expression and pattern indexes do not reflect as columns: recognise sqlgate's own name.
    return next((i.name for i in info.indexes if i.name and i.name.lower() == candidate.name.lower()), None)


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
    equality = min(equality, len(wanted))
    for name, index_columns in existing_indexes(info):
        have = [c.lower() for c in index_columns]
        if len(have) < len(wanted):
            continue
        if set(have[:equality]) == set(wanted[:equality]) and have[equality:len(wanted)] == wanted[equality:]:
            return name
    return None


# ------------------------------------------------------------------- rendering


def render(info: TableInfo, keys: tuple[Key, ...] | list[Key], dialect: str, syntax: IndexSyntax,
           include: tuple[str, ...] = ()) -> tuple[str, str]:
    """(index name, CREATE INDEX statement) in the server's syntax."""
    labels = []
    parts = []
    for key in keys:
        found = info.column(key.column)
        type_ = found.type.upper() if found is not None else ""
        if key.expression:
            labels.append(key.expression.replace("(", "_").replace(")", ""))
            parts.append(f"({key.expression})" if syntax.expression_parens else key.expression)
            continue
        text = identifier(key.column, dialect)
        labels.append(key.column)
        if key.like and syntax.prefix_like == "pattern_ops":
            text += " bpchar_pattern_ops" if type_.startswith(("CHAR", "BPCHAR")) else " text_pattern_ops"
            labels.append("pattern")
        elif key.like and syntax.prefix_like == "nocase":
            text += " COLLATE NOCASE"
            labels.append("nocase")
        elif syntax.text_prefix and (any(t in type_ for t in ("TEXT", "BLOB")) or _long_varchar(type_)):
            text += f"({syntax.text_prefix})"
        parts.append(text)
    if include:
        labels.append("incl")
        labels.extend(include)
    name = "ix_" + "_".join([info.name, *labels]).lower()
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)
    if len(name) > 60:  # PostgreSQL cuts names at 63 bytes: keep them distinct
        name = name[:51] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]  # noqa: S324 - a name, not security
    statement = f"CREATE INDEX {identifier(name, dialect)} ON {table_sql(info, dialect)} ({', '.join(parts)})"
    if include:
        statement += f" INCLUDE ({', '.join(identifier(c, dialect) for c in include)})"
    return name, statement


def _long_varchar(type_: str) -> bool:
    """VARCHAR(n) past InnoDB's 3072-byte key limit in utf8mb4 (4 bytes a character)."""
    found = re.match(r"(?:VAR)?CHAR\((\d+)\)", type_)
    return found is not None and int(found.group(1)) > 768


def create_statement(info: TableInfo, columns: list[str], dialect: str) -> str:
    """``CREATE INDEX`` on plain columns with the dialect's default syntax."""
    return render(info, [Key(c) for c in columns], dialect, syntax_for(dialect))[1]


def with_include(candidate: Candidate, dialect: str, syntax: IndexSyntax) -> Candidate | None:
    """The candidate with the other columns the query reads as INCLUDE columns, if that makes sense."""
    if not syntax.include or not candidate.covering:
        return None
    keys = {k.column.lower() for k in candidate.keys if not k.expression}
    extra = tuple(c for c in candidate.covering if c.lower() not in keys)
    if not extra or len(extra) > MAX_INCLUDE:
        return None
    for column in extra:
        found = candidate.info.column(column)
        if found is None or any(t in found.type.upper() for t in ("TEXT", "BLOB", "JSON", "BYTEA", "ARRAY")):
            return None  # wide values make a covering index big
    name, create = render(candidate.info, candidate.keys, dialect, syntax, extra)
    return Candidate(candidate.info, candidate.keys, candidate.equality,
                     candidate.reason + f"; INCLUDE ({', '.join(extra)}) allows an index-only scan",
                     include=extra, group=candidate.group, primary=candidate.primary, name=name,
                     create_statement=create)


__all__ = ["Candidate", "Key", "candidates", "covering_index", "create_statement", "render", "syntax_for",
           "unqualified_sql", "with_include"]
