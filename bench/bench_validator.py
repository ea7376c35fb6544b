"""safety.check: microseconds per check, uncached and cached, per dialect.

Run: python bench/bench_validator.py [--repeat N]

"uncached" parses and runs every rule (the verdict LRU bypassed); "cached" is a repeated
call for the same (sql, dialect, policy), the common case of an agent re-running a query.
Also shown: how long the denial of pathological input takes (bounded, never a crash).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from sqlgate import safety
from sqlgate.errors import PolicyViolation
from sqlgate.safety import check_uncached
from sqlgate.safety.parse import sqlglot_dialect
from sqlgate.safety.policy import Policy

POINT = "SELECT id, name, email FROM customers WHERE id = :id"
ANALYTICS = """
WITH monthly AS (
    SELECT o.customer_id, date_trunc('month', o.created_at) AS month, SUM(oi.quantity * oi.unit_price) AS revenue
    FROM orders o JOIN order_items oi ON oi.order_id = o.id
    WHERE o.status IN ('paid', 'shipped') AND o.created_at >= :since
    GROUP BY o.customer_id, date_trunc('month', o.created_at)
), ranked AS (
    SELECT customer_id, month, revenue,
           RANK() OVER (PARTITION BY month ORDER BY revenue DESC) AS r,
           revenue - LAG(revenue) OVER (PARTITION BY customer_id ORDER BY month) AS delta
    FROM monthly
)
SELECT c.name, r.month, r.revenue, r.delta,
       CASE WHEN r.delta > 0 THEN 'up' WHEN r.delta < 0 THEN 'down' ELSE 'flat' END AS trend,
       (SELECT COUNT(*) FROM orders o2 WHERE o2.customer_id = c.id) AS orders_total
FROM ranked r JOIN customers c ON c.id = r.customer_id
WHERE r.r <= 10 AND EXISTS (SELECT 1 FROM products p WHERE p.price > 100)
ORDER BY r.month DESC, r.revenue DESC
"""
ANALYTICS_MYSQL = ANALYTICS.replace("date_trunc('month', o.created_at)", "DATE_FORMAT(o.created_at, '%Y-%m-01')")
ANALYTICS_SQLITE = ANALYTICS.replace("date_trunc('month', o.created_at)", "strftime('%Y-%m', o.created_at)")
QUERIES = {
    "postgres": {"point": POINT, "analytics": ANALYTICS},
    "mysql": {"point": POINT, "analytics": ANALYTICS_MYSQL},
    "sqlite": {"point": POINT, "analytics": ANALYTICS_SQLITE},
}
POLICY = Policy(
    allowed_tables=("customers", "orders", "order_items", "products"),
    denied_columns=("customers.ssn",),
)
PATHOLOGICAL = {
    "100k nested parens": "SELECT " + "(" * 100_000 + "1" + ")" * 100_000,
    "5k UNION branches": " UNION ".join(["SELECT 1"] * 5_000),
    "200k-item IN list": "SELECT id FROM orders WHERE id IN (" + ",".join(["1"] * 200_000) + ")",
    "100 kB string literal": "SELECT '" + "x" * 99_980 + "'",
    "2,200 chained CTEs": "WITH c0 AS (SELECT 1 AS x), "
    + ", ".join(f"c{i} AS (SELECT x FROM c{i - 1})" for i in range(1, 2_200))
    + " SELECT * FROM c2199",
}


def per_call_us(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=300)
    repeat = parser.parse_args().repeat
    uncached = check_uncached
    print(f"{'dialect':9} {'query':10} {'uncached µs':>12} {'cached µs':>10}")
    for dialect, queries in QUERIES.items():
        name = sqlglot_dialect(dialect)
        for label, sql in queries.items():
            result = uncached(sql, name, POLICY)
            assert not isinstance(result, PolicyViolation), result
            cold = per_call_us(lambda sql=sql, name=name: uncached(sql, name, POLICY), repeat)
            safety.check(sql, dialect, POLICY)
            warm = per_call_us(lambda sql=sql, dialect=dialect: safety.check(sql, dialect, POLICY), repeat * 10)
            print(f"{dialect:9} {label:10} {cold:12.1f} {warm:10.2f}")
    print("\ndenial time of pathological input (postgres, max_query_length 50M):")
    big = POLICY.model_copy(update={"max_query_length": 50_000_000})
    for label, sql in PATHOLOGICAL.items():
        started = time.perf_counter()
        outcome = uncached(sql, "postgres", big)
        ms = (time.perf_counter() - started) * 1000
        verdict = outcome.code if isinstance(outcome, PolicyViolation) else "allowed"
        print(f"  {label:22} {ms:8.1f} ms  {verdict}")


if __name__ == "__main__":
    main()
