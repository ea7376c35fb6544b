"""Run the database's planner on a validated statement, inside a rolled-back transaction.

The statement is the verdict's checked syntax tree, rendered with the driver's parameter
markers (values bound by the driver, as for execute_query); sqlgate only prefixes its own
fixed ``EXPLAIN`` words. Everything here runs on the driver connection of a
``GuardedTransaction`` (read-only, under the statement timeout) that the caller rolls back.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlglot import exp

from sqlgate.advisor import summarize
from sqlgate.advisor.models import PlanSummary
from sqlgate.advisor.scope import table_sql
from sqlgate.db.dialects import bind, mysql_literal, pg_prepare
from sqlgate.db.schema import TableInfo


def is_tidb(version: str) -> bool:
    return "tidb" in version.lower()


def is_mariadb(version: str) -> bool:
    return "mariadb" in version.lower()


async def explain_postgres(conn: Any, statement: exp.Expr, params: dict[str, Any], options: str,
                           timeout_ms: int) -> Any:
    backstop = timeout_ms / 1000 + 2
    prepared, args = await pg_prepare(conn, statement, params, backstop, prefix=f"EXPLAIN ({options}) ")
    raw = await prepared.fetchval(*args, timeout=backstop)
    return json.loads(raw) if isinstance(raw, str) else raw


async def capture(conn: Any, driver: str, version: str, statement: exp.Expr, params: dict[str, Any],
                  analyze: bool, timeout_ms: int) -> PlanSummary:
    """The summarised plan of ``statement`` (executed too when ``analyze``)."""
    if driver == "postgresql":
        options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
        raw = await explain_postgres(conn, statement, params, options, timeout_ms)
        return summarize.summarize_postgres(raw, analyze)
    if driver == "mysql":
        return await _capture_mysql(conn, version, statement, params, analyze, timeout_ms)
    return await _capture_sqlite(conn, statement, params, analyze)


async def _mysql_rows(conn: Any, sql: str, timeout_ms: int) -> list[tuple[Any, ...]]:
    import asyncio

    async with conn.cursor() as cur:
        await asyncio.wait_for(cur.execute(sql), timeout=timeout_ms / 1000 + 2)
        return list(await cur.fetchall())


async def _capture_mysql(conn: Any, version: str, statement: exp.Expr, params: dict[str, Any], analyze: bool,
                         timeout_ms: int) -> PlanSummary:
    sql = bind(statement, "mysql", params, lambda name: mysql_literal(conn, params[name]))
    if is_tidb(version):
        rows = await _mysql_rows(conn, ("EXPLAIN ANALYZE " if analyze else "EXPLAIN ") + sql, timeout_ms)
        return summarize.summarize_tidb(rows, analyze)
    mariadb = is_mariadb(version)
    if analyze and mariadb:
        rows = await _mysql_rows(conn, "ANALYZE FORMAT=JSON " + sql, timeout_ms)
        summary = summarize.summarize_mysql(json.loads(rows[0][0]), True, True)
        limit = _limit(statement)
        if summary.actual_rows is not None and limit is not None:
            summary.actual_rows = min(summary.actual_rows, float(limit))  # r_rows count before the LIMIT
        return summary
    rows = await _mysql_rows(conn, "EXPLAIN FORMAT=JSON " + sql, timeout_ms)
    summary = summarize.summarize_mysql(json.loads(rows[0][0]), False, mariadb)
    if analyze:
        # MySQL 8: EXPLAIN ANALYZE speaks only its tree format; keep the text, read the top line.
        tree = await _mysql_rows(conn, "EXPLAIN ANALYZE " + sql, timeout_ms)
        text = str(tree[0][0]) if tree else ""
        summary.analyzed = True
        summary.raw = {"plan": summary.raw, "analyze": text}
        import re

        top = re.search(r"actual time=[\d.]+\.\.([\d.]+) rows=([\d.]+) loops=(\d+)", text)
        if top:
            summary.actual_time_ms = float(top.group(1))
            summary.actual_rows = float(top.group(2)) * int(top.group(3))
    return summary


async def _capture_sqlite(conn: Any, statement: exp.Expr, params: dict[str, Any], analyze: bool) -> PlanSummary:
    sql = bind(statement, "sqlite", params, lambda name: f":{name}")
    args = {name: (json.dumps(v) if isinstance(v, dict | list) else v) for name, v in params.items()}
    cur = await conn.execute("EXPLAIN QUERY PLAN " + sql, args)
    rows = list(await cur.fetchall())
    await cur.close()
    summary = summarize.summarize_sqlite(rows, analyze)
    if analyze:
        # SQLite has no EXPLAIN ANALYZE: run the query (the deadline of the transaction
        # applies), count the rows without keeping them.
        started = time.perf_counter()
        cur = await conn.execute(sql, args)
        count = 0
        while batch := await cur.fetchmany(1000):
            count += len(batch)
        await cur.close()
        summary.actual_rows = float(count)
        summary.actual_time_ms = round((time.perf_counter() - started) * 1000, 3)
    return summary


async def row_estimates(conn: Any, driver: str, infos: list[TableInfo]) -> dict[str, float]:
    """Approximate row counts from the catalog (SQLite: the largest rowid), by table name."""
    found: dict[str, float] = {}
    for info in infos:
        value: Any = None
        try:
            if driver == "postgresql":
                value = await conn.fetchval(
                    "SELECT reltuples::float8 FROM pg_class WHERE oid = to_regclass($1)",
                    table_sql(info, "postgres", always=True),
                )
                if value is not None and value < 0:  # never analysed: count the pages instead
                    value = await conn.fetchval(
                        "SELECT count(*)::float8 FROM (SELECT 1 FROM " + table_sql(info, "postgres", always=True)
                        + " LIMIT 1000000) AS sample"
                    )
            elif driver == "mysql":
                async with conn.cursor() as cur:
                    await cur.execute(
                        "SELECT TABLE_ROWS FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s",
                        (info.schema, info.name),
                    )
                    row = await cur.fetchone()
                    value = row[0] if row else None
            else:
                cur = await conn.execute("SELECT max(rowid) FROM " + table_sql(info, "sqlite", always=True))
                row = await cur.fetchone()
                await cur.close()
                value = row[0] if row else None
        except Exception:  # noqa: BLE001, S112 - no estimate for this table (view, WITHOUT ROWID, ...)
            continue
        if value is not None:
            found[info.name.lower()] = float(value)
    return found


def _limit(statement: exp.Expr) -> int | None:
    limit = statement.args.get("limit")
    value = limit.args.get("expression") if isinstance(limit, exp.Limit) else None
    return int(value.this) if isinstance(value, exp.Literal) and value.is_int else None
