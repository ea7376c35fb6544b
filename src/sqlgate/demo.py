"""The embedded demo database: a small, deterministic shop (customers, products, orders,
order_items) so that ``sqlgate serve`` works with zero set-up.

Created once in the user's data directory by the ``demo`` branch of sqlgate's migrations
(``sqlgate.migrations``); read-only when served. The tables below are the models the
migrations are checked against (autogenerate must find no drift).
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from sqlalchemy import (
    Column,
    Date,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
)

metadata = MetaData()

customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("email", String(200), nullable=False, unique=True),
    Column("country", String(2), nullable=False),
    Column("created_at", Date, nullable=False),
)
products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("category", String(50), nullable=False),
    Column("price", Numeric(10, 2), nullable=False),
)
orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("ordered_at", Date, nullable=False),
    Column("status", String(20), nullable=False),
)
order_items = Table(
    "order_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", Integer, ForeignKey("orders.id"), nullable=False, index=True),
    Column("product_id", Integer, ForeignKey("products.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Numeric(10, 2), nullable=False),
)

_FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
_LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Berners-Lee"]
_COUNTRIES = ["DE", "FR", "GB", "US", "NL", "SE", "ES", "IT", "JP", "BR"]
_CATEGORIES = {
    "books": ["SQL Primer", "Query Plans Explained", "Indexing in Depth", "The Relational Model"],
    "hardware": ["Mechanical Keyboard", "USB-C Hub", "27in Monitor", "Laptop Stand"],
    "coffee": ["Espresso Beans", "Filter Roast", "Decaf Blend", "Cold Brew Pack"],
}
_STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled"]


def sample_rows() -> dict[str, list[dict[str, object]]]:
    """The demo data set; the same every time (seeded)."""
    rng = random.Random(20240601)  # noqa: S311 - deterministic sample data, not secrets
    start = dt.date(2024, 1, 1)
    rows: dict[str, list[dict[str, object]]] = {k: [] for k in ("customers", "products", "orders", "order_items")}
    for i in range(1, 51):
        first, last = _FIRST[(i - 1) % 10], _LAST[(i * 7) % 10]
        rows["customers"].append({
            "id": i, "name": f"{first} {last}", "email": f"{first.lower()}.{last.lower()}{i}@example.com",
            "country": _COUNTRIES[rng.randrange(10)], "created_at": start + dt.timedelta(days=rng.randrange(120)),
        })
    pid = 0
    for category, names in _CATEGORIES.items():
        for name in names:
            pid += 1
            rows["products"].append({
                "id": pid, "name": name, "category": category,
                "price": round(rng.uniform(5, 400), 2),
            })
    item_id = 0
    for oid in range(1, 201):
        rows["orders"].append({
            "id": oid, "customer_id": rng.randrange(1, 51),
            "ordered_at": start + dt.timedelta(days=120 + rng.randrange(240)),
            "status": _STATUSES[rng.randrange(5)],
        })
        for _ in range(rng.randrange(1, 4)):
            item_id += 1
            product = rows["products"][rng.randrange(pid)]
            rows["order_items"].append({
                "id": item_id, "order_id": oid, "product_id": product["id"],
                "quantity": rng.randrange(1, 5), "unit_price": product["price"],
            })
    return rows


DEMO_HEAD = "demo_0001"  # the demo branch's head; a test keeps it equal to the migrations


async def ensure_demo_database(url: str) -> None:
    """Create (or bring up to date) the demo SQLite file; idempotent and cheap when current.

    The schema and the sample rows come from the ``demo`` branch of sqlgate's migrations,
    so the demo database is built exactly the way ``sqlgate migrate`` builds it anywhere.
    """
    import asyncio

    path = Path(url.removeprefix("sqlite:///"))
    state = await asyncio.to_thread(_demo_state, path)
    if state == "current":
        return  # the common start: no Alembic import, no engine
    from sqlgate import migrations

    path.parent.mkdir(parents=True, exist_ok=True)
    if state == "unversioned":
        # Built by sqlgate before the demo came from migrations: same tables, same rows.
        await migrations.stamp(f"sqlite:///{path}", f"{migrations.DEMO_BRANCH}@head")
    await migrations.upgrade(f"sqlite:///{path}", f"{migrations.DEMO_BRANCH}@head")


def _demo_state(path: Path) -> str:
    """``current``, ``missing`` (no file / no tables), ``unversioned`` or ``behind``."""
    import sqlite3

    if not path.exists() or path.stat().st_size == 0:
        return "missing"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "sqlgate_alembic_version" in names:
            versions = {row[0] for row in conn.execute("SELECT version_num FROM sqlgate_alembic_version")}
            return "current" if DEMO_HEAD in versions else "behind"
        return "unversioned" if "orders" in names else "missing"
    finally:
        conn.close()
