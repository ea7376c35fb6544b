"""How complex a statement is, counted on its syntax tree."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from sqlgate.advisor.models import Complexity

_WEIGHTS = {
    "joins": 1, "subqueries": 2, "correlated_subqueries": 3, "ctes": 1, "window_functions": 1,
    "set_operations": 2, "aggregations": 0, "tables": 0, "nesting_depth": 0,
}


def measure(tree: exp.Expr) -> Complexity:
    """Count the features that make a query expensive to plan and to read."""
    features = {
        "tables": sum(1 for t in tree.find_all(exp.Table) if isinstance(t.this, exp.Identifier)),
        "joins": sum(1 for _ in tree.find_all(exp.Join)),
        "subqueries": sum(1 for s in tree.find_all(exp.Select) if s is not tree and _is_subquery(s)),
        "correlated_subqueries": _correlated(tree),
        "ctes": sum(1 for _ in tree.find_all(exp.CTE)),
        "aggregations": sum(1 for _ in tree.find_all(exp.AggFunc)) - sum(
            1 for w in tree.find_all(exp.Window) if isinstance(w.this, exp.AggFunc)
        ),
        "window_functions": sum(1 for _ in tree.find_all(exp.Window)),
        "set_operations": sum(1 for _ in tree.find_all(exp.SetOperation)),
        "nesting_depth": _depth(tree),
    }
    score = sum(_WEIGHTS[k] * v for k, v in features.items()) + 2 * max(features["nesting_depth"] - 1, 0)
    if score == 0 and features["tables"] <= 1:
        level = "simple"
    elif score >= 7 or features["tables"] >= 5 or features["nesting_depth"] >= 3:
        level = "complex"
    else:
        level = "moderate"
    return Complexity(level=level, features=features)  # type: ignore[arg-type]


def _is_subquery(select: exp.Select) -> bool:
    parent = select.parent
    while isinstance(parent, (exp.Paren,)):
        parent = parent.parent
    return not isinstance(parent, (exp.SetOperation, exp.CTE)) or isinstance(select.parent, exp.Subquery)


def _correlated(tree: exp.Expr) -> int:
    try:
        return sum(1 for scope in traverse_scope(tree) if scope.is_correlated_subquery)
    except Exception:  # noqa: BLE001 - a tree the scope builder cannot read counts none
        return 0


def _depth(tree: exp.Expr) -> int:
    """Levels of SELECT nesting: 1 for a flat query, +1 per subquery or derived table."""
    deepest = 0
    for select in tree.find_all(exp.Select):
        level = 1
        parent = select.parent
        while parent is not None:
            if isinstance(parent, exp.Select):
                level += 1
            parent = parent.parent
        deepest = max(deepest, level)
    return deepest
