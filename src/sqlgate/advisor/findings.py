"""Anti-patterns, each a small rule over the syntax tree and/or the plan summary.

A rule only speaks when it can point at the construct and say what to write instead;
a query without these constructs gets no findings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from sqlgate.advisor.indexes import covering_index, unqualified_sql
from sqlgate.advisor.models import Finding, PlanSummary
from sqlgate.advisor.scope import Statement, conjuncts, owner_select, resolve, scope_nodes, sources
from sqlgate.db.schema import TableInfo

LARGE_ROWS = 10_000  # a full scan of a table this big is worth a finding when the query filters it
HUGE_ROWS = 50_000  # an exact COUNT(*) over this many rows is worth a note
UNBOUNDED_ROWS = 1_000  # a result without LIMIT estimated above this is "unbounded"

Rule = Callable[[Statement, PlanSummary | None, dict[str, Any]], list[Finding]]


def _filters(statement: Statement) -> list[tuple[exp.Expr, dict[str, TableInfo]]]:
    """Every WHERE / JOIN ON conjunct with the sources of its scope."""
    found: list[tuple[exp.Expr, dict[str, TableInfo]]] = []
    for node in scope_nodes(statement.tree):
        local = sources(node, statement)
        parts = conjuncts(node.args.get("where"))
        for join in node.args.get("joins") or []:
            parts.extend(conjuncts(join.args.get("on")))
        found.extend((part, local) for part in parts)
    return found


def _in_exists(node: exp.Expr) -> bool:
    parent = node.parent
    while isinstance(parent, exp.Subquery | exp.Paren):
        parent = parent.parent
    return isinstance(parent, exp.Exists)


def select_star(statement: Statement, plan: PlanSummary | None, params: dict[str, Any]) -> list[Finding]:
    for select in statement.tree.find_all(exp.Select):
        star = any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
                   for e in select.expressions)
        if star and not _in_exists(select):
            return [Finding(
                code="select_star", severity="low",
                message="SELECT * reads and returns every column",
                hint="name only the columns you need: less I/O and transfer, index-only scans become "
                     "possible, and the result does not change shape when the table does",
            )]
    return []


def leading_wildcard_like(statement: Statement, plan: PlanSummary | None, params: dict[str, Any]) -> list[Finding]:
    found = []
    for like in statement.tree.find_all(exp.Like, exp.ILike):
        pattern = like.expression
        text = None
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            text = pattern.this
        elif isinstance(pattern, exp.Placeholder) and isinstance(params.get(pattern.name), str):
            text = params[pattern.name]
        if text is not None and text[:1] in ("%", "_"):
            found.append(Finding(
                code="leading_wildcard_like", severity="medium",
                message=f"{like.sql(statement.dialect)} starts with a wildcard, so no B-tree index can be used",
                hint="anchor the pattern ('abc%') if you can; for substring search use full-text search or a "
                     "trigram index (PostgreSQL pg_trgm GIN); for suffix search index reverse(column)",
            ))
    return found


_DATE_FUNCS = (exp.Year, exp.Month, exp.Day, exp.Date, exp.DateTrunc, exp.TimestampTrunc, exp.Extract,
               exp.TsOrDsToDate, exp.StrToDate)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike, exp.In, exp.Between)


def function_on_filtered_column(statement: Statement, plan: PlanSummary | None,
                                params: dict[str, Any]) -> list[Finding]:
    found = []
    for part, local in _filters(statement):
        for comparison in part.find_all(*_COMPARISONS):  # find_all yields ``part`` itself first
            side = comparison.this
            if isinstance(side, exp.Column) or not isinstance(side, exp.Func | exp.Cast):
                continue
            if isinstance(side, exp.AggFunc):
                continue
            columns = [c for c in side.find_all(exp.Column) if resolve(c, local)]
            if not columns:
                continue
            column = unqualified_sql(columns[0], statement.dialect)
            indexed = unqualified_sql(side, statement.dialect)
            table = resolve(columns[0], local)
            suggested = table is not None and table[0].name.lower() in statement.suggested_tables
            if isinstance(side, _DATE_FUNCS):
                hint = (f"compare the bare column with a range instead, e.g. {column} >= '2024-01-01' AND "
                        f"{column} < '2025-01-01', so an index on {column} can be used")
            elif isinstance(side, exp.Lower | exp.Upper):
                hint = (("index the expression (see index_suggestions)" if suggested else
                         f"store the value normalised, or index the expression: CREATE INDEX ... (({indexed})) "
                         "on PostgreSQL and MySQL 8, ... (" + indexed + ") on SQLite")
                        + "; MySQL/MariaDB's default _ci collations already compare case-insensitively, so "
                        f"there comparing {column} itself is enough")
            elif isinstance(side, exp.Cast):
                hint = f"compare {column} with a value of its own type instead of casting the column"
            else:
                hint = f"move the computation to the other side of the comparison, or index the expression on {column}"
            found.append(Finding(
                code="function_on_filtered_column", severity="medium",
                message=f"{indexed} wraps the filtered column {column}: an index on {column} cannot be used",
                hint=hint,
            ))
    return found


def implicit_cross_join(statement: Statement, plan: PlanSummary | None, params: dict[str, Any]) -> list[Finding]:
    found = []
    for select in statement.tree.find_all(exp.Select):
        from_ = select.args.get("from_") or select.args.get("from")
        for join in select.args.get("joins") or []:
            # A comma join has no "pivots" slot (sqlglot fills it for JOIN keywords; SQLite's
            # parser marks commas as kind CROSS, so kind cannot tell them apart).
            comma = "pivots" not in join.args and join.args.get("kind") in (None, "CROSS")
            if not comma or join.args.get("on") or join.args.get("using") or join.args.get("side"):
                continue
            if not isinstance(join.this, exp.Table | exp.Subquery):
                continue
            alias = join.this.alias_or_name.lower()
            linked = False
            for part in conjuncts(select.args.get("where")):
                if isinstance(part, exp.EQ) and isinstance(part.left, exp.Column) and isinstance(part.right, exp.Column):
                    sides = {part.left.table.lower(), part.right.table.lower()}
                    if alias in sides and len(sides) == 2:
                        linked = True
            if not linked:
                first = from_.this.alias_or_name if isinstance(from_, exp.From) else "the first table"
                found.append(Finding(
                    code="implicit_cross_join", severity="high", table=join.this.alias_or_name,
                    message=f"{join.this.alias_or_name} is joined with a comma and no condition links it to "
                            f"{first}: every row pairs with every row (a cross join)",
                    hint="write JOIN ... ON <the key that relates the tables>; if you really want every "
                         "combination, say CROSS JOIN",
                ))
    return found


def or_across_columns(statement: Statement, plan: PlanSummary | None, params: dict[str, Any]) -> list[Finding]:
    found = []
    for part, local in _filters(statement):
        if not isinstance(part, exp.Or):
            continue
        columns = {resolve(c, local) for c in part.find_all(exp.Column)} - {None}
        names = {(info.name, col) for info, col in columns}  # type: ignore[misc]
        if len(names) > 1:
            shown = ", ".join(sorted(col for _, col in names))
            tables = {name.lower() for name, _ in names}
            if len(tables) == 1 and tables <= statement.suggested_tables:
                hint = ("index_suggestions has one index per branch: the planner combines them (BitmapOr, "
                        "index merge); if it still does not, or with ORDER BY ... LIMIT, rewrite as one query per "
                        "branch joined by UNION (ALL)")
            elif len(tables) > 1:
                hint = ("the branches filter different tables, so no index serves the OR: rewrite it as one "
                        "query per branch joined by UNION (ALL), each able to use its own index")
            else:
                hint = ("index each branch's column(s) so the planner can combine the indexes, or split it into "
                        "one query per branch joined by UNION (ALL); for one column use IN (...)")
            found.append(Finding(
                code="or_across_columns", severity="medium",
                message=f"OR across different columns ({shown}) usually prevents a single index seek",
                hint=hint,
            ))
    return found


def not_in_nullable_subquery(statement: Statement, plan: PlanSummary | None,
                             params: dict[str, Any]) -> list[Finding]:
    found = []
    for negation in statement.tree.find_all(exp.Not):
        inner = negation.this
        if not isinstance(inner, exp.In) or not inner.args.get("query"):
            continue
        query = inner.args["query"]
        select = query.this if isinstance(query, exp.Subquery) else query
        if not isinstance(select, exp.Select) or not select.expressions:
            continue
        target = select.expressions[0].unalias()
        resolved = resolve(target, sources(select, statement)) if isinstance(target, exp.Column) else None
        if resolved is not None:
            column = resolved[0].column(resolved[1])
            if column is not None and not column.nullable:
                continue
            guarded = any(
                (isinstance(p, exp.Not) and isinstance(p.this, exp.Is)) or (isinstance(p, exp.Is) and p.args.get("negate"))
                for p in conjuncts(select.args.get("where"))
            )
            if guarded:
                continue
        found.append(Finding(
            code="not_in_nullable_subquery", severity="high",
            message=f"NOT IN over a subquery whose column {target.sql(statement.dialect)} may be NULL: one "
                    "NULL makes the whole condition unknown and the query returns no rows",
            hint="use NOT EXISTS (SELECT 1 FROM ... WHERE inner.col = outer.col), which is also planned as an anti-join",
        ))
    return found


def missing_limit(statement: Statement, plan: PlanSummary | None, params: dict[str, Any]) -> list[Finding]:
    tree = statement.tree
    if not isinstance(tree, exp.Select | exp.SetOperation) or tree.args.get("limit"):
        return []
    if isinstance(tree, exp.Select):
        aggregated = any(e.find(exp.AggFunc) for e in tree.expressions) and not tree.args.get("group")
        if aggregated:
            return []
    estimate = plan.estimated_rows if plan is not None else None
    if plan is not None and plan.actual_rows is not None:
        estimate = plan.actual_rows
    elif plan is not None and plan.coarse_estimates and _narrowed(tree):
        estimate = None  # too coarse to call a result unbounded (see PlanSummary.coarse_estimates)
    if estimate is None and isinstance(tree, exp.Select) and not tree.args.get("where") and not tree.args.get("group"):
        local = sources(tree, statement)
        if len(local) == 1:
            estimate = statement.rows(next(iter(local.values())))
    if estimate is None or estimate <= UNBOUNDED_ROWS:
        return []
    return [Finding(
        code="missing_limit", severity="medium", source="ast+plan",
        message=f"no LIMIT and about {int(estimate):,} result rows expected",
        hint="add LIMIT (with ORDER BY for stable pages, e.g. WHERE id > :last_id ORDER BY id LIMIT 100); "
             "sqlgate cuts results at max_rows, but the database still produces all of them",
    )]


def _narrowed(tree: exp.Expr) -> bool:
    return isinstance(tree, exp.SetOperation) or any(
        tree.args.get(key) for key in ("where", "group", "distinct", "joins", "having")
    )


def order_by_unindexed(statement: Statement, plan: PlanSummary | None, params: dict[str, Any]) -> list[Finding]:
    tree = statement.tree
    if not isinstance(tree, exp.Select) or not tree.args.get("limit") or not tree.args.get("order"):
        return []
    if plan is not None and not plan.sorts:
        return []
    local = sources(tree, statement)
    order_columns = []
    for ordered in tree.args["order"].expressions:
        resolved = resolve(ordered.this, local) if isinstance(ordered.this, exp.Column) else None
        if resolved is None:
            return []
        order_columns.append(resolved)
    tables = {info.name for info, _ in order_columns}
    if len(tables) != 1:
        return []
    info = order_columns[0][0]
    equality = [resolve(p.left, local) for p in conjuncts(tree.args.get("where"))
                if isinstance(p, exp.EQ) and isinstance(p.left, exp.Column)]
    eq_cols = [col for found in equality if found and found[0] is info for col in [found[1]]]
    cols = [c for _, c in order_columns]
    if covering_index(info, [*eq_cols, *cols], len(eq_cols)) or covering_index(info, cols, 0):
        return []
    return [Finding(
        code="order_by_unindexed", severity="medium", table=info.name, source="ast+plan",
        message=f"ORDER BY {', '.join(cols)} with LIMIT, but no index on {info.name} delivers that order: "
                "every matching row is read and sorted to return the first few",
        hint=f"index ({', '.join([*eq_cols, *cols])}) so the database reads rows in order and stops at "
             "the LIMIT" + (" (see index_suggestions)" if info.name.lower() in statement.suggested_tables else
                            "; no such index was proven to pay here, so check the plan after creating it"),
    )]


def correlated_subquery(statement: Statement, plan: PlanSummary | None, params: dict[str, Any]) -> list[Finding]:
    found = []
    try:
        scopes = traverse_scope(statement.tree)
    except Exception:  # noqa: BLE001
        return []
    for scope in scopes:
        if not scope.is_correlated_subquery or _in_exists(scope.expression):
            continue
        outer = ", ".join(sorted({c.sql(statement.dialect) for c in scope.external_columns}))
        found.append(Finding(
            code="correlated_subquery", severity="medium",
            message=f"a subquery refers to the outer query ({outer}) and may run once per outer row",
            hint="rewrite it as a JOIN (with GROUP BY for aggregates, or a LATERAL join), or as EXISTS "
                 "when it only tests for a match",
        ))
    return found


def count_star_huge(statement: Statement, plan: PlanSummary | None, params: dict[str, Any]) -> list[Finding]:
    tree = statement.tree
    if not isinstance(tree, exp.Select) or tree.args.get("where") or tree.args.get("group"):
        return []
    if not tree.expressions or not all(isinstance(e.unalias(), exp.Count) for e in tree.expressions):
        return []
    local = sources(tree, statement)
    if len(local) != 1 or tree.args.get("joins"):
        return []
    info = next(iter(local.values()))
    rows = statement.rows(info)
    if rows is None or rows < HUGE_ROWS:
        return []
    return [Finding(
        code="count_star_huge", severity="low", table=info.name,
        message=f"an exact COUNT(*) over {info.name} (~{int(rows):,} rows) reads the whole table or an index",
        hint="if an estimate is enough, read the catalog (PostgreSQL pg_class.reltuples, MySQL "
             "information_schema.TABLES.TABLE_ROWS); for frequent exact counts keep a counter table",
    )]


def distinct_join_fanout(statement: Statement, plan: PlanSummary | None, params: dict[str, Any]) -> list[Finding]:
    for select in statement.tree.find_all(exp.Select):
        if select.args.get("distinct") and select.args.get("joins"):
            return [Finding(
                code="distinct_join_fanout", severity="medium",
                message="DISTINCT over a join: it likely hides duplicate rows the join itself creates",
                hint="when the joined table only filters, use WHERE EXISTS (SELECT 1 FROM child c WHERE "
                     "c.parent_id = p.id) instead of JOIN + DISTINCT: no fan-out, no dedup sort",
            )]
    return []


def full_scan_large_table(statement: Statement, plan: PlanSummary | None, params: dict[str, Any]) -> list[Finding]:
    if plan is None:
        return []
    by_alias: dict[str, TableInfo] = {}
    filtered: dict[str, set[str]] = {}
    for node in scope_nodes(statement.tree):
        by_alias.update(sources(node, statement))
    for part, local in _filters(statement):
        for column in part.find_all(exp.Column):
            resolved = resolve(column, local)
            if resolved is not None:
                filtered.setdefault(resolved[0].name.lower(), set()).add(resolved[1])
    found, seen = [], set()
    for scan in plan.scans:
        if scan.access != "full_scan":
            continue
        info = by_alias.get(scan.table.lower()) or statement.infos.get(scan.table.lower())
        if info is None or info.name in seen:
            continue
        rows = statement.rows(info) or scan.estimated_rows
        columns = filtered.get(info.name.lower())
        if not columns or rows is None or rows < LARGE_ROWS:
            continue
        if not plan.coarse_estimates and scan.estimated_rows and scan.estimated_rows > rows * 0.3:
            continue  # the filter keeps most rows: reading them all is the right plan
        seen.add(info.name)
        found.append(Finding(
            code="full_scan_large_table", severity="high", table=info.name, source="plan",
            message=f"the plan reads all of {info.name} (~{int(rows):,} rows, {scan.detail}) although the "
                    f"query filters or joins it on {', '.join(sorted(columns))}",
            hint=("add the index from index_suggestions" if info.name.lower() in statement.suggested_tables
                  else "no index on its filter columns was found to pay: rewrite the filter so an index can be "
                       "used (see the other findings), or filter on a more selective column"),
        ))
    return found


RULES: tuple[Rule, ...] = (
    full_scan_large_table, select_star, leading_wildcard_like, function_on_filtered_column,
    implicit_cross_join, or_across_columns, not_in_nullable_subquery, missing_limit,
    order_by_unindexed, correlated_subquery, count_star_huge, distinct_join_fanout,
)


def find(statement: Statement, plan: PlanSummary | None, params: dict[str, Any]) -> list[Finding]:
    found: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for rule in RULES:
        for finding in rule(statement, plan, params):
            if (finding.code, finding.message) not in seen:  # one construct, one finding
                seen.add((finding.code, finding.message))
                found.append(finding)
    order = {"high": 0, "medium": 1, "low": 2, "info": 3}
    return sorted(found, key=lambda f: order[f.severity])


__all__ = ["RULES", "find", "owner_select"]
