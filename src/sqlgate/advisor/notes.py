"""Database-specific advice: MySQL/MariaDB plan details and TiDB's own rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlgate.advisor.models import IndexSuggestion, PlanSummary
from sqlgate.advisor.scope import Statement


def mysql_notes(plan: PlanSummary, suggestions: list[IndexSuggestion]) -> list[str]:
    notes = []
    for table in _tables(plan.raw):
        if table.get("key") and table.get("key_length"):
            parts = ", ".join(table.get("used_key_parts") or [])
            notes.append(
                f"{table.get('table_name')}: index {table['key']} with key_len {table['key_length']}"
                + (f" (used parts: {parts})" if parts else "")
                + "; a key_len shorter than the index means only its leading columns are used"
            )
    if any(s.method == "filesort" for s in plan.sorts):
        notes.append("Using filesort: the ORDER BY/GROUP BY is sorted after reading; an index whose columns "
                     "match it (after the equality columns) removes the sort")
    if plan.temp_usage:
        notes.append("Using temporary: an intermediate temporary table is built (GROUP BY/DISTINCT on "
                     "unindexed columns, or ORDER BY on a column of a later joined table)")
    if any("(191)" in s.create_statement for s in suggestions):
        notes.append("TEXT/BLOB columns are indexed by a prefix (191 characters here); a prefix index "
                     "cannot cover the query or satisfy ORDER BY")
    return notes


def tidb_notes(plan: PlanSummary, statement: Statement) -> list[str]:
    notes = ["TiDB: run ANALYZE TABLE after bulk loads so the cost-based optimizer has fresh statistics"]
    for info in statement.infos.values():
        if any(c.autoincrement and c.name in info.primary_key for c in info.columns):
            notes.append(
                f"TiDB: {info.name} has an AUTO_INCREMENT primary key; under heavy inserts all writes hit one "
                "region (a hot spot). Use AUTO_RANDOM for the key (or SHARD_ROW_ID_BITS for tables without "
                "an integer primary key)"
            )
    if any(s.access == "full_scan" for s in plan.scans) or plan.joins:
        notes.append("TiDB: analytical queries (large scans, joins, aggregates) run far faster on TiFlash: "
                     "ALTER TABLE <table> SET TIFLASH REPLICA 1, then the optimizer can choose it")
    return notes


def _tables(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [t for item in node for t in _tables(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if "table_name" in node and "access_type" in node else []
    for value in node.values():
        found.extend(_tables(value))
    return found


_BY_DATABASE: dict[str, Callable[[PlanSummary, Statement, list[IndexSuggestion]], list[str]]] = {
    "mysql": lambda plan, statement, suggestions: mysql_notes(plan, suggestions),
    "mariadb": lambda plan, statement, suggestions: mysql_notes(plan, suggestions),
    "tidb": lambda plan, statement, suggestions: tidb_notes(plan, statement),
}


def for_plan(plan: PlanSummary, statement: Statement, suggestions: list[IndexSuggestion]) -> list[str]:
    """The notes of the database family that produced ``plan`` (none for the others)."""
    writer = _BY_DATABASE.get(plan.database)
    return writer(plan, statement, suggestions) if writer else []
