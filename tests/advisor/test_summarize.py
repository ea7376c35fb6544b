"""Plan summarisers on recorded plans of each database (pure: no database needed)."""

from __future__ import annotations

import pytest

from sqlgate.advisor import summarize
from sqlgate.db.dialects.plans import RawPlan
from sqlgate.errors import DatabaseError

PG_PLAN = [{
    "Plan": {
        "Node Type": "Limit", "Total Cost": 2100.5, "Plan Rows": 10,
        "Plans": [{
            "Node Type": "Sort", "Sort Key": ["o.amount DESC"], "Sort Method": "external merge",
            "Sort Space Type": "Disk", "Total Cost": 2100.0, "Plan Rows": 900,
            "Plans": [{
                "Node Type": "Hash Join", "Total Cost": 1900.0, "Plan Rows": 900,
                "Plans": [
                    {"Node Type": "Seq Scan", "Relation Name": "orders", "Alias": "o", "Plan Rows": 100000},
                    {"Node Type": "Hash", "Hash Batches": 4, "Plans": [
                        {"Node Type": "Bitmap Heap Scan", "Relation Name": "customers", "Plan Rows": 50,
                         "Plans": [{"Node Type": "Bitmap Index Scan", "Index Name": "ix_region"}]},
                    ]},
                ],
            }],
        }],
        "Actual Rows": 10, "Actual Loops": 1,
    },
    "Execution Time": 12.5,
}]

MYSQL8_PLAN = {
    "query_block": {
        "select_id": 1,
        "cost_info": {"query_cost": "10120.25"},
        "ordering_operation": {
            "using_filesort": True,
            "using_temporary_table": True,
            "nested_loop": [
                {"table": {"table_name": "o", "access_type": "ALL", "rows_examined_per_scan": 99800,
                           "rows_produced_per_join": 9980, "filtered": "10.00"}},
                {"table": {"table_name": "c", "access_type": "eq_ref", "key": "PRIMARY", "key_length": "4",
                           "used_key_parts": ["id"], "rows_examined_per_scan": 1,
                           "rows_produced_per_join": 9980, "filtered": "100.00", "using_index": True}},
            ],
        },
    }
}

MARIADB_ANALYZE = {
    "query_block": {
        "select_id": 1, "r_loops": 1, "r_total_time_ms": 7.2,
        "filesort": {
            "sort_key": "mt.a", "r_output_rows": 100,
            "temporary_table": {"nested_loop": [{"table": {
                "table_name": "mt", "access_type": "ALL", "rows": 50209, "r_loops": 1, "r_rows": 50000,
                "filtered": 49.9, "r_filtered": 22.222,
            }}]},
        },
    }
}


def test_postgres_summary() -> None:
    summary = summarize.summarize_postgres(PG_PLAN, analyzed=True)
    assert summary.total_cost == 2100.5 and summary.estimated_rows == 10
    assert summary.actual_rows == 10 and summary.actual_time_ms == 12.5
    assert [(s.table, s.access, s.index) for s in summary.scans] == [
        ("orders", "full_scan", None), ("customers", "index_scan", "ix_region"),
    ]
    assert [j.method for j in summary.joins] == ["Hash Join"]
    assert summary.joins[0].tables == ["customers", "orders"]
    assert summary.sorts[0].uses_temp and summary.sorts[0].keys == ["o.amount DESC"]
    assert "sort spilled to disk" in summary.temp_usage
    assert any("4 batches" in t for t in summary.temp_usage)


def test_mysql8_summary() -> None:
    summary = summarize.summarize_mysql(MYSQL8_PLAN, analyzed=False, mariadb=False)
    assert summary.database == "mysql" and summary.total_cost == 10120.25
    assert [(s.table, s.access) for s in summary.scans] == [("o", "full_scan"), ("c", "index_only_scan")]
    assert summary.sorts and summary.sorts[0].method == "filesort" and summary.sorts[0].uses_temp
    assert summary.joins[0].tables == ["o", "c"]
    assert summary.estimated_rows == 9980


def test_mariadb_analyze_summary() -> None:
    summary = summarize.summarize_mysql(MARIADB_ANALYZE, analyzed=True, mariadb=True)
    assert summary.database == "mariadb" and summary.total_cost is None
    assert summary.actual_time_ms == 7.2
    assert summary.actual_rows == 100  # what the sort put out (SELECT DISTINCT a: 100 values)
    unsorted = {"query_block": MARIADB_ANALYZE["query_block"]["filesort"]["temporary_table"]}
    assert summarize.summarize_mysql(unsorted, analyzed=True, mariadb=True).actual_rows == 11111  # 50 000 x 22.222 %
    assert summary.scans[0].actual_rows == 50000 and summary.scans[0].access == "full_scan"
    assert summary.sorts[0].keys == ["mt.a"] and "temporary table" in summary.temp_usage


def test_sqlite_summary() -> None:
    rows = [
        (3, 0, 0, "SCAN o"),
        (5, 0, 0, "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"),
        (7, 0, 0, "SEARCH x USING COVERING INDEX ix_x (a=?)"),
        (9, 0, 0, "USE TEMP B-TREE FOR ORDER BY"),
    ]
    summary = summarize.summarize_sqlite(rows, analyzed=False)
    assert [(s.table, s.access, s.index) for s in summary.scans] == [
        ("o", "full_scan", None), ("c", "index_scan", "rowid"), ("x", "index_only_scan", "ix_x"),
    ]
    assert summary.sorts[0].uses_temp and summary.joins[0].method == "Nested Loop"


def test_tidb_summary_from_a_fake_server() -> None:
    rows = [
        ("TopN_8", "10.00", "root", "", "test.o.amount:desc, offset:0, count:10"),
        ("└─HashJoin_12", "9990.00", "root", "", "inner join, equal:[eq(test.c.id, test.o.customer_id)]"),
        ("  ├─TableFullScan_15", "100000.00", "cop[tikv]", "table:o", "keep order:false"),
        ("  └─IndexRangeScan_16", "50.00", "cop[tikv]", "table:c, index:ix_region(region)", "range:[1,1]"),
        ("    └─PointGet_17", "1.00", "root", "table:t", "handle:1"),
    ]
    summary = summarize.summarize_tidb(rows, analyzed=False)
    assert summary.database == "tidb" and summary.estimated_rows == 10
    assert [(s.table, s.access, s.index) for s in summary.scans] == [
        ("o", "full_scan", None), ("c", "index_scan", "ix_region"), ("t", "const", None),
    ]
    assert [j.method for j in summary.joins] == ["HashJoin"]
    assert summary.sorts[0].method == "TopN"


def test_mariadb_sorted_read_with_limit() -> None:
    plan = {"query_block": {"select_id": 1, "r_total_time_ms": 0.2, "nested_loop": [{"read_sorted_file": {
        "r_rows": 5,
        "filesort": {"sort_key": "o.created", "r_limit": 5, "r_output_rows": 6, "table": {
            "table_name": "o", "access_type": "ref", "key": "ix_c", "key_length": "4", "rows": 20, "r_rows": 20,
            "r_loops": 1, "filtered": 100, "r_filtered": 65,
        }},
    }}]}}
    summary = summarize.summarize_mysql(plan, analyzed=True, mariadb=True)
    assert summary.actual_rows == 5 and summary.estimated_rows == 20
    assert [(s.table, s.access, s.index) for s in summary.scans] == [("o", "index_scan", "ix_c")]
    assert summary.sorts[0].keys == ["o.created"]


def test_tidb_explain_analyze_rows() -> None:
    rows = [
        ("Projection_4", "10.00", "7", "root", "", "time:1.2ms, loops:2", "test.o.id", "1 KB", "N/A"),
        ("└─TableFullScan_6", "10000.00", "10000", "cop[tikv]", "table:o", "tikv_task:{time:3ms}",
         "keep order:false", "N/A", "N/A"),
    ]
    summary = summarize.summarize_tidb(rows, analyzed=True)
    assert summary.actual_rows == 7 and summary.estimated_rows == 10
    assert [(s.table, s.access) for s in summary.scans] == [("o", "full_scan")]


def test_plans_are_read_by_their_format_and_an_unknown_format_is_an_error() -> None:
    summary = summarize.read(RawPlan("postgres-json", PG_PLAN, True))
    assert summary.database == "postgresql" and summary.total_cost == 2100.5
    sqlite = summarize.read(RawPlan("sqlite-eqp", [(2, 0, 0, "SCAN o")], True, actual_rows=3.0, actual_time_ms=1.5))
    assert (sqlite.actual_rows, sqlite.actual_time_ms) == (3.0, 1.5)
    with pytest.raises(DatabaseError):
        summarize.read(RawPlan("oracle-xplan", [], False))
