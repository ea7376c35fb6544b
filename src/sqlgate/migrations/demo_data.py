"""The demo shop's sample rows, loaded by the ``demo`` branch's first revision."""

from __future__ import annotations

import datetime as dt
import random

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
