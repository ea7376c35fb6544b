"""Query advice: the planner's view of a statement, its complexity, anti-patterns and
index suggestions with proof of benefit. Used by the query_optimization tool.

One job per module: ``capture`` runs EXPLAIN, ``summarize`` reads plans, ``complexity``
counts features, ``findings`` holds the anti-pattern rules, ``indexes`` suggests indexes,
``proof`` checks them with the planner, ``notes`` adds MySQL/TiDB specifics.
"""

from sqlgate.advisor.advice import (
    Advice,
    WorkloadAdvice,
    WorkloadItem,
    advise,
    advise_workload,
    statement_to_plan,
    top_statements,
)
from sqlgate.advisor.capture import named_placeholders

__all__ = [
    "Advice", "WorkloadAdvice", "WorkloadItem", "advise", "advise_workload", "named_placeholders",
    "statement_to_plan", "top_statements",
]
