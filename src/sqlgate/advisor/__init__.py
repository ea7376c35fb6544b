"""Query advice: the planner's view of a statement, its complexity, anti-patterns and
index suggestions with proof of benefit. Used by the query_optimization tool.

One job per module: ``capture`` runs EXPLAIN, ``summarize`` reads plans, ``complexity``
counts features, ``findings`` holds the anti-pattern rules, ``indexes`` suggests indexes,
``proof`` checks them with the planner, ``notes`` adds MySQL/TiDB specifics.

Importing the package loads nothing: the tools register with the result models
(``models``) alone, and the planner machinery (``advice``) loads on the first call.
"""
