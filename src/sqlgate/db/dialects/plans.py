"""What query_optimization asks of a dialect: plans, row estimates, index syntax and
hypothetical ("what if") indexes. Data only; each dialect module implements the hooks
in its "plans and index advice" section, and the advisor reads the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp


@dataclass
class RawPlan:
    """A plan as the database returned it, with what reading it needs.

    ``format`` names the reader (``postgres-json``, ``mysql-json``, ``mariadb-json``,
    ``tidb-rows``, ``sqlite-eqp``); the advisor has one reader per format.
    """

    format: str
    data: Any
    analyzed: bool
    actual_rows: float | None = None  # measured by sqlgate (SQLite runs the query itself)
    actual_time_ms: float | None = None
    analyze_text: str | None = None  # MySQL 8: EXPLAIN ANALYZE speaks only its tree format
    limit: int | None = None  # the statement's literal LIMIT (MariaDB's r_rows count before it)


@dataclass(frozen=True)
class IndexSyntax:
    """Which index shapes a server accepts, and how it spells them."""

    include: bool = False  # CREATE INDEX ... INCLUDE (...) (PostgreSQL 11+)
    expressions: bool = False  # indexes on lower(col) etc. (PostgreSQL, SQLite, MySQL 8.0.13+)
    expression_parens: bool = False  # MySQL wants ((expr)) for a functional key part
    # How a LIKE 'prefix%' becomes indexable: "pattern_ops" (PostgreSQL under a non-C
    # collation), "nocase" (SQLite's LIKE is case-insensitive), "plain" (MySQL: any index).
    prefix_like: str = "plain"
    text_prefix: int | None = None  # MySQL indexes TEXT/BLOB only by a prefix
    costs: bool = False  # the planner reports a comparable total cost


@dataclass
class WhatIfPlan:
    """The plan of a statement with hypothetical indexes added."""

    cost: float | None  # the planner's total cost (None where the database has no costs)
    used: list[bool]  # per index given: does the plan use it
    sizes: list[int | None] = field(default_factory=list)  # estimated bytes per index, when asked
    detail: list[str] = field(default_factory=list)  # the plan lines that use each index


class WhatIfFailed(Exception):  # noqa: N818 - a reason, not an error to report
    """The hypothetical-index proof could not run (a locked or read-only file, ...): the
    advice is returned unverified with this reason instead of failing the call."""


def statement_limit(statement: exp.Expr) -> int | None:
    limit = statement.args.get("limit")
    value = limit.args.get("expression") if isinstance(limit, exp.Limit) else None
    return int(value.this) if isinstance(value, exp.Literal) and value.is_int else None


UNVERIFIED_NO_WHAT_IF = (
    "unverified: this database cannot plan hypothetical indexes and sqlgate never changes your schema; "
    "create it on a copy and compare EXPLAIN"
)
