"""Complexity, findings and index suggestions on syntax trees with hand-made table structures."""

from __future__ import annotations

import pytest
import sqlglot

from sqlgate.advisor import complexity, findings, indexes, notes
from sqlgate.advisor.models import PlanSummary, Scan
from sqlgate.advisor.scope import Statement, identifier, prepare
from sqlgate.db.schema import ColumnInfo, IndexInfo, TableInfo


def column(name: str, type_: str = "INTEGER", nullable: bool = True, auto: bool = False) -> ColumnInfo:
    return ColumnInfo(name, type_, nullable, None, auto)


ORDERS = TableInfo(
    "orders", None,
    (column("id", auto=True), column("customer_id", nullable=False), column("status", "VARCHAR(20)"),
     column("amount", "NUMERIC"), column("created", "DATE"), column("body", "TEXT")),
    ("id",), (), (IndexInfo("ix_orders_customer_status", ("customer_id", "status"), False),), (),
)
CUSTOMERS = TableInfo("customers", None, (column("id"), column("name", "TEXT"), column("ref")), ("id",), (), (), ())


def statement(sql: str, dialect: str = "postgres", rows: float = 100_000) -> Statement:
    prepared = prepare(sqlglot.parse_one(sql, read=dialect), dialect, {"orders": ORDERS, "customers": CUSTOMERS})
    prepared.row_estimates = {"orders": rows, "customers": rows / 20}
    return prepared


@pytest.mark.parametrize(
    ("sql", "level"),
    [
        ("SELECT id FROM orders WHERE id = 1", "simple"),
        ("SELECT count(*) FROM orders", "simple"),
        ("SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id", "moderate"),
        ("SELECT id FROM orders UNION SELECT id FROM customers", "moderate"),
        ("WITH a AS (SELECT customer_id FROM orders) SELECT c.id, (SELECT max(amount) FROM orders o "
         "WHERE o.customer_id = c.id), row_number() OVER (ORDER BY c.id) FROM customers c "
         "WHERE c.id IN (SELECT customer_id FROM a)", "complex"),
    ],
)
def test_complexity_levels(sql: str, level: str) -> None:
    assert complexity.measure(statement(sql).tree).level == level


def test_complexity_counts() -> None:
    measured = complexity.measure(statement(
        "SELECT c.id, (SELECT max(amount) FROM orders o WHERE o.customer_id = c.id) FROM customers c "
        "WHERE c.id IN (SELECT customer_id FROM orders)").tree)
    assert measured.features["subqueries"] == 2
    assert measured.features["correlated_subqueries"] == 1
    assert measured.features["nesting_depth"] == 2
    assert measured.features["aggregations"] == 1


def suggested(sql: str, dialect: str = "postgres", primary_only: bool = True) -> list[list[str]]:
    return [c.columns for c in indexes.candidates(statement(sql, dialect))[0] if c.primary or not primary_only]


def creates(sql: str, dialect: str = "postgres", **params: object) -> list[str]:
    return [c.create_statement for c in indexes.candidates(statement(sql, dialect), dict(params))[0]]


def test_index_columns_equality_then_range_then_sort() -> None:
    assert suggested("SELECT id FROM orders WHERE created > '2024-01-01' AND amount = 5") == [["amount", "created"]]
    assert suggested("SELECT id FROM orders WHERE amount = 5 ORDER BY created LIMIT 5") == [["amount", "created"]]
    # a range on another column breaks the order: the sort column is left out
    assert suggested("SELECT id FROM orders WHERE amount > 5 ORDER BY created LIMIT 5") == [["amount"]]
    assert suggested("SELECT id FROM orders WHERE created BETWEEN '2024-01-01' AND '2024-02-01' "
                     "AND status IN ('a', 'b')") == [["status", "created"]]


def test_existing_index_and_its_prefixes_are_not_suggested() -> None:
    found, covered = indexes.candidates(statement("SELECT id FROM orders WHERE status = 'x' AND customer_id = 3"))
    assert found == [] and covered[0].existing_index == "ix_orders_customer_status"
    found, covered = indexes.candidates(statement("SELECT id FROM orders WHERE customer_id = 3"))
    assert found == [] and covered[0].columns == ["customer_id"]
    # the index does not start with status: a new one is worth suggesting
    assert suggested("SELECT id FROM orders WHERE status = 'x'") == [["status"]]


def test_join_keys_on_the_from_side_too() -> None:
    sql = "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.name = 'x'"
    found = indexes.candidates(statement(sql))[0]
    # customers: the filter; orders (the FROM side): its foreign key, for a nested loop into it
    assert [(c.info.name, c.columns) for c in found if c.primary] == [("customers", ["name"])]  # orders(customer_id) exists
    assert ("customers", ["name", "id"]) in [(c.info.name, c.columns) for c in found if not c.primary]
    sql = "SELECT o.id FROM orders o JOIN customers c ON c.ref = o.amount WHERE c.name = 'x'"
    assert ("orders", ["amount"]) in [(c.info.name, c.columns) for c in indexes.candidates(statement(sql))[0]]


def test_or_across_columns_gets_one_index_per_branch() -> None:
    found = indexes.candidates(statement("SELECT id FROM orders WHERE status = 'a' OR amount > 5 LIMIT 3"))[0]
    assert [c.columns for c in found] == [["status"], ["amount"]]
    assert found[0].group == found[1].group is not None
    # branches on different tables: no index serves the OR
    assert indexes.candidates(statement(
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = 'a' OR c.name = 'b'"
    ))[0] == []


def test_prefix_like_and_case_functions_get_their_own_shapes() -> None:
    assert creates("SELECT id FROM orders WHERE status LIKE 'ab%'") == [
        "CREATE INDEX ix_orders_status_pattern ON orders (status text_pattern_ops)"]
    assert creates("SELECT id FROM orders WHERE status LIKE :p", "sqlite", p="ab%") == [
        "CREATE INDEX ix_orders_status_nocase ON orders (status COLLATE NOCASE)"]
    assert creates("SELECT id FROM orders WHERE status LIKE 'ab%'", "mysql") == [
        "CREATE INDEX ix_orders_status ON orders (status)"]
    assert creates("SELECT id FROM orders WHERE status LIKE '%ab'") == []
    assert creates("SELECT o.id FROM orders o WHERE lower(o.status) = 'x'") == [
        "CREATE INDEX ix_orders_lower_status ON orders ((lower(status)))"]
    assert creates("SELECT id FROM orders WHERE UPPER(status) = 'X'", "sqlite") == [
        "CREATE INDEX ix_orders_upper_status ON orders (upper(status))"]


def test_include_columns_for_an_index_only_scan() -> None:
    [found] = indexes.candidates(statement("SELECT id, amount FROM orders WHERE status = 'x'"))[0]
    variant = indexes.with_include(found, "postgres", indexes.syntax_for("postgres"))
    assert variant is not None and variant.include == ("id", "amount")
    assert variant.create_statement.endswith("(status) INCLUDE (id, amount)")
    assert indexes.with_include(found, "mysql", indexes.syntax_for("mysql")) is None


def test_function_hint_is_valid_sql_and_said_once() -> None:
    found = findings.find(statement("SELECT o.id FROM orders o WHERE lower(o.status) = 'x'"), None, {})
    [finding] = [f for f in found if f.code == "function_on_filtered_column"]
    assert "o.status" not in finding.hint and "((lower(status)))" in finding.hint


def test_full_scan_hint_names_index_suggestions_only_when_there_are_some() -> None:
    plan = PlanSummary(database="postgresql", estimated_rows=40,
                       scans=[Scan(table="orders", access="full_scan", detail="Seq Scan", estimated_rows=40)])
    prepared = statement("SELECT id FROM orders WHERE amount = 3")
    [finding] = findings.find(prepared, plan, {})
    assert "index_suggestions" not in finding.hint
    prepared.suggested_tables = {"orders"}
    [finding] = findings.find(prepared, plan, {})
    assert "index_suggestions" in finding.hint


def test_small_tables_get_no_suggestion() -> None:
    assert indexes.candidates(statement("SELECT id FROM orders WHERE status = 'x'", rows=200))[0] == []


def test_create_statement_quoting_and_mysql_text_prefix() -> None:
    assert indexes.create_statement(ORDERS, ["status"], "postgres") == (
        "CREATE INDEX ix_orders_status ON orders (status)")
    assert identifier("Order", "postgres") == '"Order"' and identifier("select", "mysql") == "`select`"
    assert indexes.create_statement(ORDERS, ["body"], "mysql").endswith("(body(191))")
    wide = TableInfo("notes", None, (column("id"), column("text", "VARCHAR(2000)"), column("tag", "VARCHAR(40)")),
                     ("id",), (), (), ())
    assert indexes.create_statement(wide, ["tag", "text"], "mysql").endswith("(tag, `text`(191))")


def codes(sql: str, plan: PlanSummary | None = None, dialect: str = "postgres", **params: object) -> set[str]:
    return {f.code for f in findings.find(statement(sql, dialect), plan, dict(params))}


def test_findings_on_the_syntax_tree() -> None:
    assert codes("SELECT * FROM orders WHERE id = 1") == {"select_star"}
    assert codes("SELECT id FROM orders WHERE EXISTS (SELECT * FROM customers WHERE customers.id = 1) "
                 "AND id = 1") == set()
    assert "function_on_filtered_column" in codes("SELECT id FROM orders WHERE EXTRACT(year FROM created) = 2024")
    assert "function_on_filtered_column" in codes("SELECT id FROM orders WHERE CAST(amount AS TEXT) = '5'")
    assert codes("SELECT id FROM orders WHERE status = 'a' OR status = 'b' LIMIT 3") == set()
    assert "or_across_columns" in codes("SELECT id FROM orders WHERE status = 'a' OR amount = 1 LIMIT 3")
    assert codes("SELECT o.id FROM orders o CROSS JOIN customers c WHERE o.id = 1") == set()
    assert codes("SELECT o.id FROM orders o, customers c WHERE c.id = o.customer_id AND o.id = 1") == set()
    assert "leading_wildcard_like" in codes("SELECT id FROM orders WHERE status LIKE :p LIMIT 1", p="%x")
    assert "leading_wildcard_like" not in codes("SELECT id FROM orders WHERE status LIKE :p LIMIT 1", p="x%")


def test_not_in_is_fine_over_a_not_null_column() -> None:
    assert codes("SELECT id FROM customers WHERE id NOT IN (SELECT customer_id FROM orders) LIMIT 5") == set()
    assert "not_in_nullable_subquery" in codes("SELECT id FROM orders WHERE id NOT IN (SELECT ref FROM customers) "
                                               "LIMIT 5")
    assert codes("SELECT id FROM orders WHERE id NOT IN (SELECT ref FROM customers WHERE ref IS NOT NULL) "
                 "LIMIT 5") == set()


def test_plan_based_findings() -> None:
    plan = PlanSummary(database="postgresql", estimated_rows=40,
                       scans=[Scan(table="orders", access="full_scan", detail="Seq Scan", estimated_rows=40)])
    assert codes("SELECT id FROM orders WHERE amount = 3", plan) == {"full_scan_large_table"}
    big = PlanSummary(database="postgresql", estimated_rows=90_000,
                      scans=[Scan(table="orders", access="full_scan", detail="Seq Scan", estimated_rows=90_000)])
    # the filter keeps most rows: reading everything is right, but the result is unbounded
    assert codes("SELECT id FROM orders WHERE amount > 0", big) == {"missing_limit"}


def test_tidb_notes() -> None:
    plan = PlanSummary(database="tidb", scans=[Scan(table="orders", access="full_scan", detail="TableFullScan")])
    text = " ".join(notes.tidb_notes(plan, statement("SELECT id FROM orders", "mysql")))
    assert "AUTO_RANDOM" in text and "TIFLASH REPLICA" in text and "ANALYZE TABLE" in text
