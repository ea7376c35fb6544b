"""Does query_optimization's advice make queries faster? A TPC-H-like PostgreSQL bench.

Builds (once; ``--rebuild`` to redo) a scratch database ``qo_tpch`` on the local PostgreSQL:
customers 50k, products 20k, orders 500k, lineitem 2M rows, primary keys (and foreign
key constraints) only, hypopg created. Then, for 12 analytic queries (10 that need an
index, 2 served by a primary key):

1. time each query (median of ``--runs`` runs, straight on asyncpg, warm cache);
2. ask sqlgate's query_optimization for each query through an in-process MCP client and
   record its suggestions and the answer's size in bytes; ask workload_optimization for
   all 12 at once;
3. build exactly the advised indexes (the union of the per-query advice), ANALYZE, time
   the queries again; drop them; do the same with the workload set, with a hand-picked
   "known good" set, and per query with only that query's own advice ("alone": no help
   from an index another query asked for).

Prints a table per query and the summary the issue asks for (queries sped up >= 2x of
the 10 that need an index, median speed-up of those 10, false positives on the 2
PK-served queries). Run:

    python bench/query_optimization.py [--runs 3] [--rebuild] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from mcp import Client

from sqlgate.server.app import build_server
from sqlgate.settings import load_settings

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
NAME = "qo_tpch"
URL = f"postgresql://postgres@127.0.0.1:5432/{NAME}"
TABLES = "customers,products,orders,lineitem"

SCHEMA = [
    "CREATE EXTENSION IF NOT EXISTS hypopg",
    "CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, email varchar(100) NOT NULL, "
    "region text NOT NULL, signup date NOT NULL)",
    "CREATE TABLE products (id integer PRIMARY KEY, sku varchar(20) NOT NULL, name text NOT NULL, "
    "category text NOT NULL, price numeric(10,2) NOT NULL)",
    "CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers, "
    "status varchar(12) NOT NULL, order_date date NOT NULL, total numeric(12,2) NOT NULL, coupon text)",
    "CREATE TABLE lineitem (id bigint PRIMARY KEY, order_id integer NOT NULL REFERENCES orders, "
    "product_id integer NOT NULL REFERENCES products, quantity integer NOT NULL, price numeric(10,2) NOT NULL, "
    "ship_date date NOT NULL)",
    # generate_series keeps generation to seconds; hashes spread the keys.
    "INSERT INTO customers SELECT g, 'customer ' || g, 'user' || g || '@example.com', "
    "'region-' || (g % 40), DATE '2018-01-01' + (g % 2000) FROM generate_series(1, 50000) g",
    "INSERT INTO products SELECT g, 'SKU-' || lpad(g::text, 5, '0'), 'product ' || g, 'cat-' || (g % 50), "
    "(g % 500) + 0.99 FROM generate_series(1, 20000) g",
    "INSERT INTO orders SELECT g, 1 + (hashint4(g) & 2147483647) % 50000, "
    "(ARRAY['new','paid','shipped','delivered','delivered','delivered','delivered','returned'])[1 + g % 8], "
    "DATE '2021-01-01' + (g % 1400), (g % 10000) / 7.0, "
    "CASE WHEN g % 5000 = 0 THEN 'WELCOME' || (g % 97) END FROM generate_series(1, 500000) g",
    "INSERT INTO lineitem SELECT g, 1 + (g - 1) / 4, 1 + (hashint4(g::int) & 2147483647) % 20000, 1 + g % 9, "
    "(g % 500) + 0.99, DATE '2021-01-03' + ((g / 4) % 1400) FROM generate_series(1, 2000000) g",
    "VACUUM ANALYZE",
]

QUERIES: list[tuple[str, str, bool]] = [  # (name, SQL, needs an index)
    ("fk join, FROM side", "SELECT p.sku, sum(l.quantity) AS units FROM lineitem l JOIN products p "
     "ON p.id = l.product_id WHERE p.sku = 'SKU-00042' GROUP BY p.sku", True),
    ("customer's orders", "SELECT o.id, o.total FROM orders o JOIN customers c ON c.id = o.customer_id "
     "WHERE c.email = 'user1234@example.com'", True),
    ("OR across columns", "SELECT id, total FROM orders WHERE customer_id = 4242 OR coupon = 'WELCOME7'", True),
    ("LIKE prefix", "SELECT id, name FROM customers WHERE email LIKE 'user4242@%'", True),
    ("lower() filter", "SELECT id, name FROM customers WHERE lower(email) = 'user777@example.com'", True),
    ("date range", "SELECT id, total FROM orders WHERE order_date >= '2024-03-01' AND order_date < '2024-03-02'",
     True),
    ("ORDER BY LIMIT", "SELECT id, total FROM orders WHERE status = 'returned' ORDER BY order_date DESC LIMIT 20",
     True),
    ("eq + range", "SELECT sum(quantity) FROM lineitem WHERE product_id = 777 AND ship_date >= '2024-01-01'", True),
    ("EXISTS", "SELECT c.id FROM customers c WHERE c.region = 'region-7' AND c.signup = '2019-05-01' AND EXISTS "
     "(SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.status = 'returned')", True),
    ("IN + GROUP BY", "SELECT o.status, count(*) AS n FROM orders o WHERE o.customer_id IN (11, 22, 33, 44, 55) "
     "GROUP BY o.status", True),
    ("PK lookup", "SELECT id, customer_id, total FROM orders WHERE id = 12345", False),
    ("PK join", "SELECT l.quantity, o.total FROM lineitem l JOIN orders o ON o.id = l.order_id WHERE l.id = 99999",
     False),
]

KNOWN_GOOD = [
    "CREATE INDEX kg_lineitem_product ON lineitem (product_id, ship_date)",
    "CREATE INDEX kg_products_sku ON products (sku)",
    "CREATE INDEX kg_customers_email ON customers (email text_pattern_ops)",
    "CREATE INDEX kg_customers_email_eq ON customers (email)",
    "CREATE INDEX kg_customers_lower ON customers ((lower(email)))",
    "CREATE INDEX kg_customers_region ON customers (region, signup)",
    "CREATE INDEX kg_orders_customer ON orders (customer_id, status)",
    "CREATE INDEX kg_orders_coupon ON orders (coupon)",
    "CREATE INDEX kg_orders_date ON orders (order_date)",
    "CREATE INDEX kg_orders_status_date ON orders (status, order_date)",
]


async def build(rebuild: bool) -> None:
    admin = await asyncpg.connect(ADMIN)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", NAME)
        if exists and not rebuild:
            return
        await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{NAME}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(URL)
    started = time.perf_counter()
    try:
        for sql in SCHEMA:
            await conn.execute(sql)
    finally:
        await conn.close()
    print(f"built {NAME} in {time.perf_counter() - started:.1f} s")


async def timings(runs: int, only: int | None = None) -> list[float]:
    conn = await asyncpg.connect(URL)
    try:
        found = []
        for position, (_, sql, _) in enumerate(QUERIES):
            if only is not None and position != only:
                found.append(float("nan"))
                continue
            await conn.fetch(sql)  # warm the cache
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                await conn.fetch(sql)
                times.append((time.perf_counter() - started) * 1000)
            found.append(statistics.median(times))
        return found
    finally:
        await conn.close()


async def isolated(advised: list[list[str]], runs: int) -> list[float]:
    """Each query with only its own advice built (no help from another query's indexes)."""
    return [(await with_indexes(found, runs, only=i))[i] if found else float("nan")
            for i, found in enumerate(advised)]


async def with_indexes(statements: list[str], runs: int, only: int | None = None) -> list[float]:
    conn = await asyncpg.connect(URL)
    names = []
    try:
        for sql in statements:
            await conn.execute(sql)
            names.append(sql.split()[2])
        await conn.execute("ANALYZE")
        return await timings(runs, only)
    finally:
        for name in names:
            await conn.execute(f"DROP INDEX IF EXISTS {name}")
        await conn.close()


async def advice() -> tuple[list[dict[str, Any]], dict[str, Any], list[int], float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({"database_url": URL, "data_dir": tmp, "log_level": "WARNING",
                                  "audit_enabled": False, "allowed_tables": TABLES,
                                  "statement_timeout_ms": 60_000})
        async with Client(build_server(settings)) as client:
            answers, sizes = [], []
            started = time.perf_counter()
            for _, sql, _ in QUERIES:
                result = await client.call_tool("query_optimization", {"query": sql})
                assert not result.is_error, result.content
                answers.append(result.structured_content)
                sizes.append(len(json.dumps(result.structured_content, separators=(",", ":"))))
            per_query_s = (time.perf_counter() - started) / len(QUERIES)
            workload = await client.call_tool("workload_optimization",
                                              {"queries": [{"query": sql} for _, sql, _ in QUERIES]})
            assert not workload.is_error, workload.content
            return answers, workload.structured_content, sizes, per_query_s


def summary(label: str, before: list[float], after: list[float]) -> dict[str, Any]:
    needing = [i for i, (_, _, needs) in enumerate(QUERIES) if needs]
    speedups = [before[i] / after[i] for i in needing]
    return {"set": label, "sped_up_2x": sum(s >= 2 for s in speedups), "of": len(needing),
            "median_speedup": round(statistics.median(speedups), 1)}


async def main() -> dict[str, Any] | None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    await build(args.rebuild)
    before = await timings(args.runs)
    answers, workload, sizes, per_query_s = await advice()
    advised = [[s["create_statement"] for s in a["index_suggestions"]] for a in answers]
    union = list(dict.fromkeys(sql for found in advised for sql in found))
    workload_set = [s["create_statement"] for s in workload["index_suggestions"]]
    after = await with_indexes(union, args.runs)
    after_workload = await with_indexes(workload_set, args.runs)
    after_known = await with_indexes(KNOWN_GOOD, args.runs)
    alone = await isolated(advised, args.runs)
    alone = [before[i] if t != t else t for i, t in enumerate(alone)]  # no advice: as before
    false_positives = sum(len(found) for found, (_, _, needs) in zip(advised, QUERIES, strict=True) if not needs)

    print(f"\n{'query':22} {'before ms':>10} {'advised':>9} {'speed-up':>9} {'alone':>8} {'workload':>9} "
          f"{'known':>8}  {'bytes':>6}  suggestions")
    for i, (name, _, _) in enumerate(QUERIES):
        shown = "; ".join(s.split(" ON ", 1)[1] for s in advised[i]) or "-"
        print(f"{name:22} {before[i]:10.2f} {after[i]:9.2f} {before[i] / after[i]:8.1f}x {before[i] / alone[i]:7.1f}x "
              f"{before[i] / after_workload[i]:8.1f}x {before[i] / after_known[i]:7.1f}x  {sizes[i]:6}  {shown}")
    rows = [summary("per-query advice", before, after), summary("each query alone", before, alone),
            summary("workload advice", before, after_workload), summary("known good", before, after_known)]
    print()
    for row in rows:
        print(f"{row['set']:18} sped up >= 2x: {row['sped_up_2x']}/{row['of']}   median speed-up: "
              f"{row['median_speedup']}x")
    print(f"false positives on the 2 PK-served queries: {false_positives}")
    print(f"indexes: per-query union {len(union)}, workload set {len(workload_set)}, known good {len(KNOWN_GOOD)}")
    print(f"answer size: median {statistics.median(sizes)} bytes, max {max(sizes)}; "
          f"{per_query_s * 1000:.0f} ms per query_optimization call; workload call "
          f"{workload['duration_ms']:.0f} ms")
    if args.json:
        return {"json": args.json, "before_ms": before, "after_ms": after, "after_workload_ms": after_workload,
                "after_known_ms": after_known, "advised": advised, "workload": workload_set, "sizes": sizes,
                "summary": rows, "false_positives": false_positives}
    return None


if __name__ == "__main__":
    found = asyncio.run(main())
    if found:
        Path(found.pop("json")).write_text(json.dumps(found, indent=1))
