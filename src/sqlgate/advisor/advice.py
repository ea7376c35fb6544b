"""The advisor's entry points: one query (plan, complexity, findings, index advice) and a
workload (the smallest index set that serves several queries, with per-query costs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from sqlgate.advisor import capture, complexity, findings, indexes, notes, proof
from sqlgate.advisor.models import (
    Advice,
    CoveredIndex,
    IndexSet,
    IndexSuggestion,
    PlanSummary,
    QueryCost,
    WorkloadAdvice,
    WorkloadItem,
)
from sqlgate.advisor.scope import Statement, prepare
from sqlgate.db.dialects.plans import WhatIfFailed
from sqlgate.db.guard import GuardedTransaction
from sqlgate.db.schema import TableInfo, table_info, view_plan_refused
from sqlgate.errors import InvalidArgument, PolicyViolation
from sqlgate.safety import parse
from sqlgate.safety.rules import READ_KINDS

if TYPE_CHECKING:
    from sqlgate.db.engines import Database
    from sqlgate.safety.verdict import Verdict


def statement_to_plan(verdict: Verdict, query: str, analyze: bool) -> exp.Expr:
    """The checked statement as the agent wrote it (without sqlgate's row cap)."""
    if len(verdict.expressions) != 1:
        raise InvalidArgument("query_optimization takes one statement", "pass a single SQL statement")
    if verdict.statement_kind in ("explain", "describe"):
        raise InvalidArgument(
            "pass the statement itself, without EXPLAIN/DESCRIBE", "query_optimization runs EXPLAIN for you"
        )
    if analyze and (verdict.writes or verdict.statement_kind not in READ_KINDS.values()):
        raise PolicyViolation(
            f"analyze=true executes the statement, and {verdict.statement_kind.upper()} is not a read",
            "call again with analyze=false to see the estimated plan of a write; analyze runs only queries",
            code="STATEMENT_NOT_ALLOWED",
        )
    statement = verdict.expressions[0].copy()
    if verdict.row_capped and isinstance(statement, exp.Select | exp.SetOperation):
        original = parse.parse(query, verdict.dialect)[0]
        limit = original.args.get("limit")
        statement.set("limit", limit.copy() if limit is not None else None)
    return statement


_VIEW_HINT = ("query_optimization plans statements on tables only; run the view's query on its "
              "(whitelisted) tables instead, or use execute_query")


async def _structures(database: Database, verdicts: list[Verdict]) -> dict[str, TableInfo]:
    infos: dict[str, TableInfo] = {}
    for verdict in verdicts:
        for table in verdict.tables:
            if table.lower() in infos:
                continue
            try:
                info = await table_info(database, table)
            except PolicyViolation:
                continue  # a table that vanished: advice without its structure
            if info.is_view:
                raise view_plan_refused(table, _VIEW_HINT)
            infos[table.lower()] = info
    return infos


def _location(database: Database) -> str | None:
    found = database.driver.local_file(database.engine.url)
    return str(found) if found is not None else None


@asynccontextmanager
async def _transaction(database: Database, writes: bool) -> AsyncIterator[tuple[GuardedTransaction, Any]]:
    """A transaction that is always rolled back; read-only unless a write's plain EXPLAIN
    needs it (MySQL refuses EXPLAIN DELETE in a read-only one) and the policy allows it."""
    tx = GuardedTransaction(database, read_only=not writes or database.policy.read_only,
                            timeout_ms=database.policy.statement_timeout_ms)
    await tx.start()
    try:
        async with tx.step():
            yield tx, tx.connection
    finally:
        await tx.rollback()  # EXPLAIN ANALYZE ran the statement: nothing it did is kept


@dataclass
class _Planned:
    verdict: Verdict
    statement: exp.Expr
    params: dict[str, Any]
    plan: PlanSummary
    analysed: Statement
    candidates: list[indexes.Candidate]
    covered: list[CoveredIndex]
    generic: bool = False


async def _select(database: Database, conn: Any, queries: list[proof.Query],
                  candidates: list[indexes.Candidate]) -> proof.Selection:
    dialect = database.driver
    location = _location(database)
    syntax = dialect.index_syntax(database.server_version)
    reason = await dialect.what_if_unavailable(conn, location)
    if reason is not None:
        return proof.unverified(candidates, reason, len(queries))
    trial = proof.Trial(dialect, conn, location, queries, candidates, database.policy.statement_timeout_ms)
    try:
        return await proof.select(trial, syntax, database.dialect)
    except WhatIfFailed as exc:
        return proof.unverified(candidates, str(exc), len(queries))


async def _plan_all(database: Database, conn: Any, items: list[WorkloadItem], infos: dict[str, TableInfo],
                    analyze: bool, suggest: bool, skipped: list[str] | None = None) -> list[_Planned | None]:
    """Plan and candidates per item; a generic statement the planner refuses is skipped
    (None, with the reason in ``skipped``): it came from statistics, not from the agent."""
    dialect = database.driver
    syntax = dialect.index_syntax(database.server_version)
    estimates = await capture.row_estimates(dialect, conn, list(infos.values()))
    planned: list[_Planned | None] = []
    for item in items:
        try:
            plan = await capture.capture(dialect, conn, database.server_version, item.statement, item.params,
                                         analyze, database.policy.statement_timeout_ms, item.generic)
        except Exception as exc:
            if not item.generic or skipped is None:
                raise
            skipped.append(f"skipped {item.text!r}: the planner refused its generic plan ({exc})")
            planned.append(None)
            continue
        analysed = prepare(item.statement, item.verdict.dialect, infos)
        analysed.row_estimates = estimates
        found, covered = indexes.candidates(analysed, item.params, syntax) if suggest else ([], [])
        planned.append(_Planned(item.verdict, item.statement, item.params, plan, analysed, found, covered,
                                item.generic))
    return planned


async def _choose(database: Database, writes: bool, planned: list[_Planned],
                  candidates: list[indexes.Candidate], conn: Any) -> proof.Selection | None:
    """The selection, on ``conn`` when the dialect plans hypothetical indexes on the advisor's
    transaction, else (SQLite) after it on the dialect's own connection (``conn`` is None)."""
    if not candidates:
        return None
    queries = [proof.Query(p.statement, p.params, p.plan.total_cost, p.generic) for p in planned]
    own = database.driver.what_if_own_connection
    if conn is not None and not own:
        return await _select(database, conn, queries, candidates)
    if conn is None and own:
        return await _select(database, None, queries, candidates)
    return None


async def advise(
    database: Database, verdict: Verdict, statement: exp.Expr, params: dict[str, Any], *, analyze: bool,
    suggest_indexes: bool,
) -> Advice:
    infos = await _structures(database, [verdict])
    selection = None
    async with _transaction(database, verdict.writes) as (_tx, conn):
        [found] = await _plan_all(database, conn, [WorkloadItem(verdict, statement, params)], infos, analyze,
                                  suggest_indexes)
        assert found is not None
        planned = found
        selection = await _choose(database, verdict.writes, [planned], planned.candidates, conn)
    if selection is None:
        selection = await _choose(database, verdict.writes, [planned], planned.candidates, None)
    suggestions, index_set, dialect_notes = _shape(selection, planned.plan.total_cost)
    analysed = planned.analysed
    analysed.suggested_tables = {s.table.lower() for s in suggestions}
    dialect_notes.extend(notes.for_plan(planned.plan, analysed, suggestions))
    return Advice(
        plan=planned.plan,
        complexity=complexity.measure(analysed.tree),
        findings=findings.find(analysed, planned.plan, params),
        index_suggestions=suggestions,
        index_set=index_set,
        already_indexed=planned.covered,
        dialect_notes=dialect_notes,
    )


def _suggestion(item: proof.Chosen, selection: proof.Selection, cost_before: float | None,
                query: int = 0) -> IndexSuggestion:
    candidate = item.candidate
    suggestion = IndexSuggestion(
        table=candidate.info.name, columns=candidate.columns, include=list(candidate.include) or None,
        name=candidate.name, create_statement=candidate.create_statement, reason=candidate.reason, order=item.order,
        works_with=item.works_with or None, estimated_size_bytes=item.size,
    )
    if not selection.verified:
        suggestion.verification = selection.verification
        return suggestion
    suggestion.verified = True
    after = item.costs_after[query] if item.costs_after else None
    if after is not None and cost_before is not None:
        suggestion.cost_before, suggestion.cost_after = cost_before, after
        suggestion.marginal_gain = item.marginal
        together = f" together with {', '.join(item.works_with)}" if item.works_with else ""
        suggestion.verification = f"hypopg: the planner uses it{together}"  # the numbers are the fields
    elif after is None:
        suggestion.verification = (
            f"the planner uses it (index created and rolled back): {item.detail}".rstrip(": ")
        )
    return suggestion


def _shape(selection: proof.Selection | None,
           cost_before: float | None) -> tuple[list[IndexSuggestion], IndexSet | None, list[str]]:
    if selection is None:
        return [], None, []
    suggestions = [_suggestion(item, selection, cost_before) for item in selection.chosen]
    index_set = None
    if suggestions:
        after = selection.final_costs[0] if selection.final_costs else None
        sizes = [s.estimated_size_bytes for s in suggestions]
        index_set = IndexSet(
            verified=True if selection.verified else None,
            cost_before=cost_before if after is not None else None, cost_after=after,
            improvement=round(1 - after / cost_before, 4) if after is not None and cost_before else None,
            estimated_size_bytes=sum(s for s in sizes if s is not None) if any(s is not None for s in sizes) else None,
        )
    return suggestions, index_set, list(selection.notes)


# ---------------------------------------------------------------------- workload


async def top_statements(database: Database, limit: int) -> list[tuple[str, int, float]]:
    """The costliest statements the database's statistics know (PostgreSQL: pg_stat_statements)."""
    async with _transaction(database, False) as (_tx, conn):
        return await database.driver.top_statements(conn, limit)


async def advise_workload(database: Database, items: list[WorkloadItem]) -> WorkloadAdvice:
    """The smallest index set the planner proves for all ``items`` together."""
    skipped: list[str] = []
    readable = []
    for position, item in enumerate(items):
        try:
            await _structures(database, [item.verdict])
        except PolicyViolation as exc:
            if not item.generic:
                exc.message = f"query {position}: {exc.message}"
                raise
            skipped.append(f"skipped {item.text!r}: {exc.message}")  # from statistics, not from the agent
            continue
        readable.append(item)
    items = readable
    infos = await _structures(database, [item.verdict for item in items])
    writes = any(item.verdict.writes for item in items)
    selection = None
    async with _transaction(database, writes) as (_tx, conn):
        found = await _plan_all(database, conn, items, infos, False, True, skipped)
        kept = [(item, p) for item, p in zip(items, found, strict=True) if p is not None]
        items = [item for item, _ in kept]
        planned = [p for _, p in kept]
        pool = _union([c for p in planned for c in p.candidates])
        selection = await _choose(database, writes, planned, pool, conn)
    if selection is None:
        selection = await _choose(database, writes, planned, pool, None)
    result = WorkloadAdvice(dialect_notes=skipped)
    if selection is None:
        result.queries = [QueryCost(query=i, cost_before=p.plan.total_cost, already_indexed=p.covered,
                                    statement=item.text, calls=item.calls, total_time_ms=item.total_time_ms)
                          for i, (item, p) in enumerate(zip(items, planned, strict=True))]
        return result
    total_before = sum(p.plan.total_cost or 0.0 for p in planned)
    for chosen in selection.chosen:
        suggestion = _suggestion(chosen, selection, None)
        if selection.verified and chosen.costs_after and chosen.costs_after[0] is not None:
            suggestion.cost_before = None
            suggestion.cost_after = None
            suggestion.marginal_gain = chosen.marginal
            suggestion.verification = "hypopg: the planner uses it (see queries[].uses)"
        result.index_suggestions.append(suggestion)
    for i, (item, p) in enumerate(zip(items, planned, strict=True)):
        after = selection.final_costs[i] if i < len(selection.final_costs) else None
        uses = [c.candidate.name for c in selection.chosen if _uses(c, i, p, selection.verified)]
        before = p.plan.total_cost
        result.queries.append(QueryCost(
            query=i, cost_before=before, cost_after=after, uses=uses, already_indexed=p.covered,
            improvement=round(1 - after / before, 4) if after is not None and before else None,
            statement=item.text, calls=item.calls, total_time_ms=item.total_time_ms,
        ))
    if result.index_suggestions:
        finals = [c for c in selection.final_costs if c is not None]
        sizes = [s.estimated_size_bytes for s in result.index_suggestions if s.estimated_size_bytes is not None]
        result.index_set = IndexSet(
            verified=True if selection.verified else None,
            cost_before=total_before if finals else None, cost_after=sum(finals) if finals else None,
            improvement=round(1 - sum(finals) / total_before, 4) if finals and total_before else None,
            estimated_size_bytes=sum(sizes) if sizes else None,
        )
    result.dialect_notes = skipped + (list(selection.notes) if selection.verified else [selection.verification])
    return result


def _uses(item: proof.Chosen, query: int, planned: _Planned, verified: bool) -> bool:
    if verified:
        return query in item.used_by
    return any(c.identity() == item.candidate.identity() for c in planned.candidates)


def _union(found: list[indexes.Candidate]) -> list[indexes.Candidate]:
    seen: set[tuple[Any, ...]] = set()
    kept = []
    for candidate in found:
        if candidate.identity() not in seen:
            seen.add(candidate.identity())
            kept.append(candidate)
    return kept
