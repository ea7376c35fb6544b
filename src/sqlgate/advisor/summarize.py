"""Turn each database's raw plan into one ``PlanSummary``. Pure functions, no I/O.

PostgreSQL: ``EXPLAIN (FORMAT JSON)`` node tree. MySQL and MariaDB: ``EXPLAIN FORMAT=JSON``
(MySQL reports ``cost_info``; MariaDB 10.x has no costs but ``rows``/``filtered``, and
``ANALYZE FORMAT=JSON`` adds ``r_*`` actuals). SQLite: ``EXPLAIN QUERY PLAN`` rows.
TiDB: plain ``EXPLAIN`` rows (id, estRows, task, access object, operator info).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlgate.advisor.models import Join, PlanSummary, Scan, Sort
from sqlgate.db.dialects.plans import RawPlan
from sqlgate.errors import DatabaseError

# ------------------------------------------------------------------ PostgreSQL

_PG_SCANS = {
    "Seq Scan": "full_scan",
    "Index Scan": "index_scan",
    "Index Only Scan": "index_only_scan",
    "Bitmap Heap Scan": "index_scan",
    "Tid Scan": "const",
}
_PG_JOINS = {"Nested Loop", "Hash Join", "Merge Join"}


def summarize_postgres(raw: Any, analyzed: bool) -> PlanSummary:
    root = raw[0] if isinstance(raw, list) else raw
    top = root["Plan"]
    summary = PlanSummary(
        database="postgresql",
        analyzed=analyzed,
        total_cost=top.get("Total Cost"),
        estimated_rows=top.get("Plan Rows"),
        raw=raw,
    )
    if analyzed:
        summary.actual_rows = _pg_actual_rows(top)
        summary.actual_time_ms = root.get("Execution Time", top.get("Actual Total Time"))
    bitmap_index: dict[int, str] = {}
    for node in _pg_nodes(top):
        kind = node.get("Node Type", "")
        if kind == "Bitmap Index Scan":
            bitmap_index[id(node)] = node.get("Index Name", "")
        if kind in _PG_SCANS and node.get("Relation Name"):
            index = node.get("Index Name")
            if kind == "Bitmap Heap Scan":
                index = next((c.get("Index Name") for c in _pg_nodes(node) if c.get("Index Name")), None)
            summary.scans.append(
                Scan(
                    table=node["Relation Name"],
                    access=_PG_SCANS[kind],  # type: ignore[arg-type]
                    detail=kind,
                    index=index,
                    estimated_rows=node.get("Plan Rows"),
                    actual_rows=_pg_actual_rows(node) if analyzed else None,
                )
            )
        elif kind in _PG_JOINS:
            tables = sorted({n["Relation Name"] for n in _pg_nodes(node) if n.get("Relation Name")})
            summary.joins.append(Join(method=kind, tables=tables))
        elif kind in ("Sort", "Incremental Sort"):
            disk = node.get("Sort Space Type") == "Disk"
            summary.sorts.append(Sort(keys=list(node.get("Sort Key", [])), method=node.get("Sort Method"),
                                      uses_temp=disk))
            if disk:
                summary.temp_usage.append("sort spilled to disk")
        elif kind == "Hash" and int(node.get("Hash Batches", 1) or 1) > 1:
            summary.temp_usage.append(f"hash spilled to disk in {node['Hash Batches']} batches")
        elif kind == "Materialize":
            summary.temp_usage.append("materialized an intermediate result")
    return summary


def _pg_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node]
    for child in node.get("Plans", []):
        found.extend(_pg_nodes(child))
    return found


def _pg_actual_rows(node: dict[str, Any]) -> float | None:
    rows = node.get("Actual Rows")
    if rows is None:
        return None
    return float(rows) * float(node.get("Actual Loops", 1) or 1)


# ------------------------------------------------------------- MySQL / MariaDB

_MYSQL_ACCESS = {
    "ALL": "full_scan",
    "index": "full_index_scan",
    "range": "index_scan",
    "ref": "index_scan",
    "ref_or_null": "index_scan",
    "eq_ref": "index_scan",
    "index_merge": "index_scan",
    "fulltext": "index_scan",
    "const": "const",
    "system": "const",
}


def summarize_mysql(raw: Any, analyzed: bool, mariadb: bool) -> PlanSummary:
    summary = PlanSummary(database="mariadb" if mariadb else "mysql", analyzed=analyzed, raw=raw,
                          coarse_estimates=True)
    block = raw.get("query_block", {}) if isinstance(raw, dict) else {}
    cost = block.get("cost_info", {}).get("query_cost")
    summary.total_cost = float(cost) if cost is not None else None
    if analyzed:
        summary.actual_time_ms = block.get("r_total_time_ms")
    tables: list[dict[str, Any]] = []
    _mysql_walk(block, summary, tables)
    for table in tables:
        access = table.get("access_type", "")
        covering = bool(table.get("using_index"))
        mapped = _MYSQL_ACCESS.get(access, "other")
        if mapped == "index_scan" and covering:
            mapped = "index_only_scan"
        rows = table.get("rows_examined_per_scan", table.get("rows"))
        summary.scans.append(
            Scan(
                table=table.get("table_name", "?"),
                access=mapped,  # type: ignore[arg-type]
                detail=access or "?",
                index=table.get("key") or _merged_keys(table.get("index_merge")),
                estimated_rows=float(rows) if rows is not None else None,
                actual_rows=float(table["r_rows"]) if analyzed and table.get("r_rows") is not None else None,
            )
        )
    top = _mysql_top_tables(block)
    if top:
        summary.estimated_rows = _mysql_output_rows(top, "rows", "filtered")
        sorted_rows = next((f.get("r_rows") for f in _mysql_find(block, "read_sorted_file") if "r_rows" in f), None)
        if sorted_rows is None:
            sorted_rows = next(
                (f.get("r_output_rows") for f in _mysql_find(block, "filesort") if "r_output_rows" in f), None
            )
        if analyzed and sorted_rows is not None:
            summary.actual_rows = float(sorted_rows)
        elif analyzed:
            last = top[-1]
            if last.get("r_rows") is not None:
                summary.actual_rows = round(
                    float(last.get("r_loops", 1)) * float(last["r_rows"]) * float(last.get("r_filtered", 100)) / 100
                )
    return summary


def _merged_keys(node: Any) -> str | None:
    """MariaDB nests an index merge's keys (sort_union/union/intersect of ranges)."""
    found: list[str] = []

    def walk(inner: Any) -> None:
        if isinstance(inner, list):
            for item in inner:
                walk(item)
        elif isinstance(inner, dict):
            if isinstance(inner.get("key"), str) and inner["key"] not in found:
                found.append(inner["key"])
            for value in inner.values():
                walk(value)

    walk(node)
    return ",".join(found) or None


def _mysql_output_rows(tables: list[dict[str, Any]], rows_key: str, filtered_key: str) -> float:
    total = 1.0
    for table in tables:
        rows = table.get("rows_produced_per_join") if "rows_produced_per_join" in table else None
        if rows is not None:
            total = float(rows)
            continue
        total *= float(table.get(rows_key, 1) or 1) * float(table.get(filtered_key, 100) or 100) / 100
    return round(total, 1)


_WRAPPERS = ("filesort", "temporary_table", "ordering_operation", "grouping_operation", "duplicates_removal",
             "read_sorted_file", "duplicate_removal")


def _unwrap(node: Any) -> Any:
    """Step through sort/temporary-table wrappers to the node that holds a join or a table."""
    while isinstance(node, dict):
        if isinstance(node.get("table"), dict) or isinstance(node.get("nested_loop"), list):
            return node
        node = next((node[k] for k in _WRAPPERS if isinstance(node.get(k), dict)), None)
    return None


def _mysql_top_tables(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The tables of the outermost join (not those inside subqueries or materializations)."""
    node = _unwrap(block)
    if node is None:
        return []
    if isinstance(node.get("table"), dict):
        return [node["table"]]
    found = []
    for entry in node["nested_loop"]:
        inner = _unwrap(entry)
        if inner is not None and isinstance(inner.get("table"), dict):
            found.append(inner["table"])
    return found


def _mysql_find(node: Any, key: str) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [f for item in node for f in _mysql_find(item, key)]
    if not isinstance(node, dict):
        return []
    found = [node[key]] if isinstance(node.get(key), dict) else []
    for value in node.values():
        found.extend(_mysql_find(value, key))
    return found


def _mysql_walk(node: Any, summary: PlanSummary, tables: list[dict[str, Any]]) -> None:
    if isinstance(node, list):
        for item in node:
            _mysql_walk(item, summary, tables)
        return
    if not isinstance(node, dict):
        return
    if "table_name" in node and "access_type" in node:
        tables.append(node)
    for key, value in node.items():
        if key in ("filesort", "ordering_operation") and isinstance(value, dict):
            uses_temp = bool(value.get("using_temporary_table")) or "temporary_table" in value
            if key == "filesort" or value.get("using_filesort"):
                summary.sorts.append(Sort(keys=[str(value.get("sort_key", ""))] if value.get("sort_key") else [],
                                          method="filesort", uses_temp=uses_temp))
        if key in ("temporary_table",) or (key == "using_temporary_table" and value):
            summary.temp_usage.append("temporary table")
        if key == "block-nl-join" and isinstance(value, dict):
            summary.joins.append(Join(method="Block Nested Loop",
                                      tables=[str(value.get("table", {}).get("table_name", "?"))]))
        if key == "nested_loop" and isinstance(value, list) and len(value) > 1:
            names = [str(v.get("table", {}).get("table_name", "?")) for v in value if isinstance(v, dict)]
            summary.joins.append(Join(method="Nested Loop", tables=names))
        if key == "using_join_buffer" and value:
            summary.joins.append(Join(method=f"Join buffer ({value})", tables=[str(node.get("table_name", "?"))]))
        _mysql_walk(value, summary, tables)


# ------------------------------------------------------------------------ SQLite

_SQLITE_SCAN = re.compile(r"^(SCAN|SEARCH)\s+(?:TABLE\s+)?(\S+)(?:\s+AS\s+\S+)?(?:\s+(.*))?$")


def summarize_sqlite(rows: list[tuple[Any, ...]], analyzed: bool) -> PlanSummary:
    summary = PlanSummary(database="sqlite", analyzed=analyzed,
                          raw=[{"id": r[0], "parent": r[1], "detail": r[-1]} for r in rows])
    scanned = 0
    for row in rows:
        detail = str(row[-1])
        match = _SQLITE_SCAN.match(detail)
        if match:
            verb, table, rest = match.group(1), match.group(2), match.group(3) or ""
            scanned += 1
            index = None
            found = re.search(r"USING (?:COVERING )?INDEX (\S+)", rest)
            if found:
                index = found.group(1)
            if "INTEGER PRIMARY KEY" in rest:
                index = "rowid"
            if verb == "SCAN":
                access = "full_index_scan" if index else "full_scan"
            else:
                access = "index_only_scan" if "COVERING INDEX" in rest else "index_scan"
            summary.scans.append(Scan(table=table, access=access, detail=detail, index=index))  # type: ignore[arg-type]
        elif detail.startswith("USE TEMP B-TREE"):
            summary.sorts.append(Sort(keys=[detail.removeprefix("USE TEMP B-TREE FOR ")], method="temp b-tree",
                                      uses_temp=True))
            summary.temp_usage.append(detail.lower())
        elif "AUTOMATIC" in detail and "INDEX" in detail:
            summary.temp_usage.append(detail.lower())
    if scanned > 1:
        summary.joins.append(Join(method="Nested Loop", tables=[s.table for s in summary.scans]))
    return summary


# -------------------------------------------------------------------------- TiDB

def summarize_tidb(rows: list[tuple[Any, ...]], analyzed: bool) -> PlanSummary:
    """Rows of TiDB's ``EXPLAIN``: (id, estRows, task, access object, operator info);
    ``EXPLAIN ANALYZE`` adds actRows after estRows and execution info, memory, disk."""
    summary = PlanSummary(database="tidb", analyzed=analyzed, coarse_estimates=True,
                          raw=[list(r) for r in rows])
    for position, row in enumerate(rows):
        operator = str(row[0]).strip(" │├└─").split("_")[0]
        est = float(row[1]) if row[1] not in (None, "", "N/A") else None
        with_actuals = len(row) >= 9
        if with_actuals:
            row = (row[0], row[1], row[3], row[4], row[6])
        if position == 0:
            summary.estimated_rows = est
            if with_actuals:
                summary.actual_rows = float(rows[0][2])
        access_object = str(row[3] or "")
        table = re.search(r"table:(\w+)", access_object)
        index = re.search(r"index:(\w+)", access_object)
        if operator in ("TableFullScan", "TableRangeScan", "IndexFullScan", "IndexRangeScan",
                        "PointGet", "BatchPointGet", "IndexLookUp"):
            access = {
                "TableFullScan": "full_scan", "IndexFullScan": "full_index_scan", "PointGet": "const",
                "BatchPointGet": "const",
            }.get(operator, "index_scan")
            if table:
                summary.scans.append(Scan(table=table.group(1), access=access, detail=operator,  # type: ignore[arg-type]
                                          index=index.group(1) if index else None, estimated_rows=est))
        elif operator.endswith("Join"):
            summary.joins.append(Join(method=operator))
        elif operator in ("Sort", "TopN"):
            summary.sorts.append(Sort(keys=[str(row[4] or "")], method=operator))
    return summary


# ---------------------------------------------------------------- by plan format

def _read_postgres(raw: RawPlan) -> PlanSummary:
    return summarize_postgres(raw.data, raw.analyzed)


def _read_mariadb(raw: RawPlan) -> PlanSummary:
    summary = summarize_mysql(raw.data, raw.analyzed, True)
    if raw.analyzed and summary.actual_rows is not None and raw.limit is not None:
        summary.actual_rows = min(summary.actual_rows, float(raw.limit))  # r_rows count before the LIMIT
    return summary


_MYSQL_ANALYZE_TOP = re.compile(r"actual time=[\d.]+\.\.([\d.]+) rows=([\d.]+) loops=(\d+)")


def _read_mysql(raw: RawPlan) -> PlanSummary:
    summary = summarize_mysql(raw.data, False, False)
    if raw.analyzed:
        # MySQL 8: EXPLAIN ANALYZE speaks only its tree format; keep the text, read the top line.
        text = raw.analyze_text or ""
        summary.analyzed = True
        summary.raw = {"plan": summary.raw, "analyze": text}
        top = _MYSQL_ANALYZE_TOP.search(text)
        if top:
            summary.actual_time_ms = float(top.group(1))
            summary.actual_rows = float(top.group(2)) * int(top.group(3))
    return summary


def _read_tidb(raw: RawPlan) -> PlanSummary:
    return summarize_tidb(raw.data, raw.analyzed)


def _read_sqlite(raw: RawPlan) -> PlanSummary:
    summary = summarize_sqlite(raw.data, raw.analyzed)
    summary.actual_rows, summary.actual_time_ms = raw.actual_rows, raw.actual_time_ms
    return summary


READERS: dict[str, Callable[[RawPlan], PlanSummary]] = {
    "postgres-json": _read_postgres,
    "mariadb-json": _read_mariadb,
    "mysql-json": _read_mysql,
    "tidb-rows": _read_tidb,
    "sqlite-eqp": _read_sqlite,
}


def read(raw: RawPlan) -> PlanSummary:
    """The summary of a plan in any format a dialect produces; an unknown format is an error."""
    reader = READERS.get(raw.format)
    if reader is None:
        raise DatabaseError(
            f"query_optimization cannot read plans in the {raw.format!r} format",
            "this database's plans are not supported; use execute_query",
        )
    return reader(raw)
