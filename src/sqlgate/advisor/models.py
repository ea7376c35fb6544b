"""The shapes query_optimization returns: plan summary, complexity, findings, index advice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from sqlglot import exp

    from sqlgate.safety.verdict import Verdict

# An index must save at least this share of some query's cost to be kept (proof.py).
MIN_GAIN = 0.10

Severity = Literal["high", "medium", "low", "info"]
# What a scan does, in one vocabulary for every database.
Access = Literal["full_scan", "index_scan", "index_only_scan", "full_index_scan", "const", "other"]


class Scan(BaseModel):
    table: str
    access: Access
    detail: str = Field(description="the database's own name for the access (Seq Scan, ALL, SCAN, ...)")
    index: str | None = None
    estimated_rows: float | None = None
    actual_rows: float | None = None


class Join(BaseModel):
    method: str
    tables: list[str] = Field(default_factory=list)


class Sort(BaseModel):
    keys: list[str] = Field(default_factory=list)
    method: str | None = None
    uses_temp: bool = Field(default=False, description="spills to disk or a temporary table")


class PlanSummary(BaseModel):
    database: str
    analyzed: bool = False
    total_cost: float | None = None
    estimated_rows: float | None = None
    actual_rows: float | None = None
    actual_time_ms: float | None = None
    scans: list[Scan] = Field(default_factory=list)
    joins: list[Join] = Field(default_factory=list)
    sorts: list[Sort] = Field(default_factory=list)
    temp_usage: list[str] = Field(default_factory=list)
    raw: Any = None
    # MySQL-family estimates count rows before grouping and, without histograms, assume
    # unindexed filters keep every row: too coarse to judge a result's or a filter's size.
    coarse_estimates: bool = Field(default=False, exclude=True)

    def scans_of(self, table: str) -> list[Scan]:
        lowered = table.lower()
        return [s for s in self.scans if s.table.lower() == lowered]


class Complexity(BaseModel):
    level: Literal["simple", "moderate", "complex"]
    features: dict[str, int]


class Finding(BaseModel):
    code: str
    severity: Severity
    message: str
    hint: str
    table: str | None = None
    source: Literal["ast", "plan", "ast+plan"] = "ast"


class IndexSuggestion(BaseModel):
    table: str
    columns: list[str] = Field(description="key parts in order: column names, or expressions such as lower(email)")
    include: list[str] | None = Field(default=None, description="INCLUDE columns (PostgreSQL): an index-only scan")
    name: str = ""
    create_statement: str = Field(description="never executed by sqlgate; run it yourself if you agree")
    reason: str
    verified: bool | None = Field(
        default=None, description="true: the planner used it and the plan got cheaper; null: not checked"
    )
    verification: str = ""
    order: int | None = Field(default=None, description="create the suggestions in this order (1 first)")
    cost_before: float | None = Field(default=None, description="the query's cost with none of the suggestions")
    cost_after: float | None = Field(
        default=None, description="the query's cost with this suggestion and those before it in `order`"
    )
    marginal_gain: float | None = Field(
        default=None, description="share of the cost this index saves given all the others (0.25 = 25 %)"
    )
    works_with: list[str] | None = Field(
        default=None, description="suggestions that must exist too for this one to pay (e.g. OR branches)"
    )
    estimated_size_bytes: int | None = None


class CoveredIndex(BaseModel):
    table: str
    columns: list[str]
    existing_index: str


# --- what the tools answer (advice.py builds them)


class IndexSet(BaseModel):
    """The suggested indexes taken together."""

    verified: bool | None = None
    cost_before: float | None = None
    cost_after: float | None = Field(default=None, description="estimated cost with every suggestion built")
    improvement: float | None = Field(default=None, description="share of the cost saved (0.9 = 90 % cheaper)")
    estimated_size_bytes: int | None = None
    minimum_marginal_gain: float = MIN_GAIN


class Advice(BaseModel):
    plan: PlanSummary
    complexity: Complexity
    findings: list[Finding] = Field(default_factory=list)
    index_suggestions: list[IndexSuggestion] = Field(default_factory=list)
    index_set: IndexSet | None = Field(default=None, description="the suggestions as a set: combined cost and size")
    already_indexed: list[CoveredIndex] = Field(
        default_factory=list, description="what the query needs that an existing index already provides"
    )
    dialect_notes: list[str] = Field(default_factory=list)


class QueryCost(BaseModel):
    query: int = Field(description="position in `queries` (0 first), then the top statements in order")
    statement: str | None = Field(default=None, description="a top statement's normalised text")
    calls: int | None = None
    total_time_ms: float | None = None
    cost_before: float | None = None
    cost_after: float | None = None
    improvement: float | None = None
    uses: list[str] = Field(default_factory=list, description="suggested indexes the planner uses for it")
    already_indexed: list[CoveredIndex] = Field(default_factory=list)


class WorkloadAdvice(BaseModel):
    index_suggestions: list[IndexSuggestion] = Field(default_factory=list)
    index_set: IndexSet | None = None
    queries: list[QueryCost] = Field(default_factory=list)
    dialect_notes: list[str] = Field(default_factory=list)


@dataclass
class WorkloadItem:
    """One statement of a workload: checked, with its values (or none: a generic plan)."""

    verdict: Verdict
    statement: exp.Expr
    params: dict[str, Any]
    generic: bool = False  # from pg_stat_statements: values unknown
    text: str | None = None  # the normalised statement, shown back
    calls: int | None = None
    total_time_ms: float | None = None
