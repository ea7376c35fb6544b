"""What is sent means what was written: labels and results, on the real servers.

Every must-allow query of the safety corpus (``corpus.toml``) and of the ordinary-analytics
corpus (``analytics_corpus.toml``) runs on each real database twice — as the agent wrote
it and as ``safety.check`` sends it (``Verdict.sql``) — in a transaction that is rolled
back, over tables built from the corpora's schema. The column labels must be identical;
the rows too, unless the query is nondeterministic (``random()``, ``now()``: labels only).
A query the server refuses as written (a function the test schema cannot serve) must be
refused as sent as well. The test reports how many queries it compared.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate import safety
from sqlgate.db.engines import async_url
from sqlgate.errors import PolicyViolation
from sqlgate.safety.policy import Policy
from tests.conftest import Backend
from tests.safety.test_corpus import policy_for

pytestmark = pytest.mark.anyio

HERE = Path(__file__).parent
NONDETERMINISTIC = re.compile(
    r"random|rand\(|now\(|current_|uuid|clock_|localtime|sysdate|curdate|curtime|utc_|datetime\('now|"
    r"date\('now|time\('now|julianday\('now|strftime\('%s', 'now|version|connection_id|unixepoch\(\)|"
    r"string_agg|group_concat|array_agg|json_agg|jsonb_agg|json_arrayagg|json_group_array|tablesample",
    re.IGNORECASE,
)
# Rows in unspecified order: compared as multisets unless the query orders its result.
ORDERED = re.compile(r"\border\s+by\b", re.IGNORECASE)
# Where the text sent must differ from the text written, and with it the label.
KNOWN_LABEL_CHANGES = {
    "mysql-double-dash-minus": "MySQL reads 'total --1' as total - -1; a space keeps the two minus signs apart",
}
PLACEHOLDER_VALUES = {"id": 1, "cid": 1, "customer_id": 1, "limit": 5, "n": 5, "status": "paid",
                      "since": "2024-01-01", "start": "2024-01-01", "end": "2024-12-31", "name": "Ada",
                      "email": "ada@example.com", "q": "a", "min_total": 10, "tier": "gold"}

DDL: dict[str, list[str]] = {
    "postgres": [
        "DROP SCHEMA IF EXISTS analytics CASCADE",
        "CREATE SCHEMA analytics",
        "CREATE TABLE analytics.daily_stats (day DATE PRIMARY KEY, orders INTEGER, revenue NUMERIC(12,2))",
    ],
    "mysql": [],
    "sqlite": [],
}
TEXT = {"postgres": "TEXT", "mysql": "VARCHAR(200)", "sqlite": "TEXT"}
JSON = {"postgres": "JSONB", "mysql": "JSON", "sqlite": "TEXT"}
STAMP = {"postgres": "TIMESTAMP", "mysql": "DATETIME", "sqlite": "TIMESTAMP"}


def schema(kind: str) -> list[str]:
    t, j, ts = TEXT[kind], JSON[kind], STAMP[kind]
    drops = [f"DROP TABLE IF EXISTS {name}" for name in ("order_items", "orders", "events", "products", "customers")]
    return [
        *drops,
        *DDL[kind],
        f"CREATE TABLE customers (id INTEGER PRIMARY KEY, name {t}, email {t}, ssn {t}, tier {t}, "
        f"country {t}, city {t}, age INTEGER, created_at {ts}, note {t})",
        f"CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total NUMERIC(10,2), status {t}, "
        f"created_at {ts}, shipped_at {ts}, note {t})",
        "CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER, product_id INTEGER, quantity INTEGER, "
        "unit_price NUMERIC(10,2))",
        f"CREATE TABLE products (id INTEGER PRIMARY KEY, title {t}, name {t}, price NUMERIC(10,2), category {t}, "
        f"sku {t}, stock INTEGER)",
        f"CREATE TABLE events (id INTEGER PRIMARY KEY, customer_id INTEGER, type {t}, payload {j}, created_at {ts})",
        "INSERT INTO customers VALUES "
        "(1, 'Ada Lovelace', 'ada@example.com', '111-11-1111', 'gold', 'UK', 'London', 36, '2024-01-05 10:00:00', 'vip\\\\x'),"
        "(2, 'Alan Turing', 'alan@example.org', '222-22-2222', 'silver', 'UK', 'Wilmslow', 41, '2024-02-11 09:30:00', NULL),"
        "(3, 'Grace Hopper', 'grace@navy.mil', '333-33-3333', 'gold', 'US', 'Arlington', 85, '2024-03-20 16:45:00', 'a_b'),"
        "(4, 'Edsger Dijkstra', 'ewd@example.nl', '444-44-4444', 'bronze', 'NL', 'Nuenen', 72, '2024-03-21 08:00:00', 'x  y'),"
        "(5, 'Barbara Liskov', NULL, '555-55-5555', 'silver', 'US', 'Boston', 84, '2024-05-02 12:00:00', 'O''Brien')",
        "INSERT INTO orders VALUES "
        "(1, 1, 120.50, 'paid', '2024-01-06 11:00:00', '2024-01-07 09:00:00', 'first'),"
        "(2, 1, 35.00, 'shipped', '2024-02-01 15:20:00', '2024-02-03 10:00:00', NULL),"
        "(3, 2, 250.00, 'paid', '2024-02-12 08:10:00', NULL, 'gift  wrap'),"
        "(4, 3, 12.99, 'cancelled', '2024-03-22 19:00:00', NULL, 'n/a'),"
        "(5, 3, 980.00, 'paid', '2024-04-01 07:45:00', '2024-04-02 07:45:00', 'bulk'),"
        "(6, 4, 45.10, 'pending', '2024-04-15 13:30:00', NULL, NULL),"
        "(7, 5, 300.00, 'shipped', '2024-05-03 17:05:00', '2024-05-05 12:00:00', 'express')",
        "INSERT INTO order_items VALUES (1, 1, 1, 2, 50.25), (2, 1, 2, 1, 20.00), (3, 2, 3, 1, 35.00), "
        "(4, 3, 1, 5, 50.00), (5, 4, 4, 1, 12.99), (6, 5, 2, 49, 20.00), (7, 6, 3, 1, 45.10), (8, 7, 1, 6, 50.00)",
        "INSERT INTO products VALUES (1, 'Widget', 'widget', 50.25, 'tools', 'W-1', 10), "
        "(2, 'Gadget', 'gadget', 20.00, 'tools', 'G-2', 0), (3, 'Book', 'book', 35.00, 'media', 'B-3', 7), "
        "(4, 'Pen', 'pen', 12.99, 'office', 'P-4', 100)",
        "INSERT INTO events VALUES "
        "(1, 1, 'signup', '{\"type\": \"signup\", \"customer\": {\"email\": \"ada@example.com\"}, "
        "\"address\": {\"city\": \"London\"}, \"items\": [{\"sku\": \"W-1\"}]}', '2024-01-05 10:00:00'),"
        "(2, 2, 'login', '{\"type\": \"login\", \"customer\": {\"email\": \"alan@example.org\"}, "
        "\"items\": []}', '2024-02-11 09:31:00'),"
        "(3, 3, 'purchase', '{\"type\": \"purchase\", \"amount\": 980, \"items\": [{\"sku\": \"G-2\"}, "
        "{\"sku\": \"B-3\"}]}', '2024-04-01 07:45:00')",
        *([] if kind != "postgres" else [
            "INSERT INTO analytics.daily_stats VALUES ('2024-01-06', 1, 120.50), ('2024-02-12', 1, 250.00)",
        ]),
    ]


def analytics_cases() -> list[dict[str, Any]]:
    return list(tomllib.loads((HERE / "analytics_corpus.toml").read_text())["query"])


def must_allow(kind: str) -> list[tuple[str, str, Policy]]:
    """(id, sql, policy) of every must-allow query for one dialect."""
    out: list[tuple[str, str, Policy]] = []
    for case in tomllib.loads((HERE / "corpus.toml").read_text())["case"]:
        if case["expect"] == "allow" and kind in case["dialects"]:
            out.append((case["id"], case["sql"], policy_for(case, kind)))
    for case in analytics_cases():
        if kind in case["dialects"]:
            base = policy_for({}, kind)
            out.append((f"analytics:{case['id']}", case["sql"], base))
    return out


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _bindable(sql: str) -> bool:
    return not re.search(r"\$\d|(?<![\w'])\?(?![\w|&-])|%\(", sql)


def _normalise(rows: list[Any], ordered: bool) -> list[Any]:
    values = [tuple(repr(v) for v in row) for row in rows]
    return values if ordered else sorted(values)


async def _run(conn: Any, sql: str) -> tuple[list[str], list[Any]] | str:
    params = {name: PLACEHOLDER_VALUES.get(name, 1) for name in re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", sql)}
    transaction = await conn.begin()
    try:
        result = await conn.execute(text(sql), params)
        if not result.returns_rows:
            return ([], [])
        return (list(result.keys()), list(result.fetchall()))
    except Exception as exc:  # noqa: BLE001 - the server's refusal is the result
        return f"error: {type(exc).__name__}"
    finally:
        await transaction.rollback()


async def test_as_written_and_as_sent_agree(backend: Backend) -> None:
    kind = backend.name
    await backend.aexecute(*schema(kind))
    engine = create_async_engine(async_url(backend.url))
    compared = both_refused = 0
    differences: list[str] = []
    try:
        async with engine.connect() as conn:
            for case_id, sql, policy in must_allow(kind):
                try:
                    verdict = safety.check(sql, kind, policy)
                except PolicyViolation:
                    continue  # the corpus tests report denials
                if not _bindable(sql) or verdict.statement_kind == "multi":
                    continue
                written = await _run(conn, sql)
                sent = await _run(conn, verdict.sql)
                if isinstance(written, str):
                    # Refused as written, it may run as sent: ``(SELECT ...)`` is unwrapped.
                    both_refused += isinstance(sent, str)
                    continue
                if isinstance(sent, str):
                    differences.append(f"{case_id}: runs as written, {sent} as sent: {verdict.sql}")
                    continue
                compared += 1
                if written[0] != sent[0] and case_id not in KNOWN_LABEL_CHANGES:
                    differences.append(f"{case_id}: labels {written[0]} as written, {sent[0]} as sent")
                    continue
                if NONDETERMINISTIC.search(sql):
                    continue
                ordered = bool(ORDERED.search(sql))
                cap = policy.max_rows + 1
                if _normalise(written[1][:cap], ordered) != _normalise(sent[1], ordered):
                    differences.append(f"{case_id}: rows differ: {written[1][:3]} vs {sent[1][:3]}")
    finally:
        await engine.dispose()
    print(f"\n{kind}: {compared} queries compared as written and as sent, {both_refused} refused by the server both ways")
    assert compared >= 60
    assert not differences, "\n".join(differences)
