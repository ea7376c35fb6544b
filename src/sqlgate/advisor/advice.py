"""The advisor's one entry point: plan, complexity, findings, index advice for a verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sqlglot import exp

from sqlgate.advisor import capture, complexity, findings, indexes, notes, proof
from sqlgate.advisor.models import Complexity, CoveredIndex, Finding, IndexSuggestion, PlanSummary
from sqlgate.advisor.scope import prepare
from sqlgate.db.guard import GuardedTransaction
from sqlgate.db.schema import TableInfo, table_info
from sqlgate.errors import InvalidArgument, PolicyViolation
from sqlgate.safety import parse
from sqlgate.safety.rules import READ_KINDS

if TYPE_CHECKING:
    from sqlgate.db.engines import Database
    from sqlgate.safety.verdict import Verdict


class Advice(BaseModel):
    plan: PlanSummary
    complexity: Complexity
    findings: list[Finding] = Field(default_factory=list)
    index_suggestions: list[IndexSuggestion] = Field(default_factory=list)
    already_indexed: list[CoveredIndex] = Field(
        default_factory=list, description="what the query needs that an existing index already provides"
    )
    dialect_notes: list[str] = Field(default_factory=list)


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


async def _structures(database: Database, verdict: Verdict) -> dict[str, TableInfo]:
    infos: dict[str, TableInfo] = {}
    for table in verdict.tables:
        try:
            infos[table.lower()] = await table_info(database, table)
        except PolicyViolation:
            continue  # a view or a table that vanished: advice without its structure
    return infos


async def advise(
    database: Database, verdict: Verdict, statement: exp.Expr, params: dict[str, Any], *, analyze: bool,
    suggest_indexes: bool,
) -> Advice:
    infos = await _structures(database, verdict)
    timeout_ms = database.policy.statement_timeout_ms
    driver = database.driver.name
    dialect_notes: list[str] = []
    # Read-only even on a read_write database; only a write's plain EXPLAIN needs a writable
    # transaction (MySQL refuses EXPLAIN DELETE in a read-only one). Always rolled back.
    tx = GuardedTransaction(database, read_only=not verdict.writes or database.policy.read_only,
                            timeout_ms=timeout_ms)
    await tx.start()
    try:
        conn = tx.connection
        if driver == "postgresql":
            async with conn.transaction():
                estimates = await capture.row_estimates(conn, driver, list(infos.values()))
        else:
            estimates = await capture.row_estimates(conn, driver, list(infos.values()))
        plan = await capture.capture(conn, driver, database.server_version, statement, params, analyze, timeout_ms)
        analysed = prepare(statement, verdict.dialect, infos)
        analysed.row_estimates = estimates
        suggestions, covered = indexes.suggest(analysed) if suggest_indexes else ([], [])
        if suggestions and driver == "postgresql":
            suggestions, dropped = await proof.prove_postgres(
                conn, statement, params, suggestions, plan.total_cost, timeout_ms
            )
            dialect_notes.extend(dropped)
    except BaseException as exc:
        await tx.rollback()
        if isinstance(exc, Exception):
            raise database.driver.map_error(exc, timeout_ms) from exc
        raise  # cancelled: the connection went back rolled back
    await tx.rollback()  # EXPLAIN ANALYZE ran the statement: nothing it did is kept
    if suggestions and driver == "sqlite":
        suggestions, dropped = await proof.prove_sqlite(
            database.engine.url.database, statement, params, suggestions, timeout_ms
        )
        dialect_notes.extend(dropped)
    if driver == "mysql":
        for suggestion in suggestions:
            suggestion.verification = proof.UNVERIFIED_MYSQL
        if capture.is_tidb(database.server_version):
            dialect_notes.extend(notes.tidb_notes(plan, analysed))
        else:
            dialect_notes.extend(notes.mysql_notes(plan, suggestions))
    return Advice(
        plan=plan,
        complexity=complexity.measure(analysed.tree),
        findings=findings.find(analysed, plan, params),
        index_suggestions=suggestions,
        already_indexed=covered,
        dialect_notes=dialect_notes,
    )
