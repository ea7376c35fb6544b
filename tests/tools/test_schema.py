"""describe_schema and the schema:// resources, through a real MCP client on all three databases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Backend, unique

pytestmark = pytest.mark.anyio

DDL = {
    "sqlite": [
        "CREATE TABLE {c} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, ssn TEXT, "
        "tier VARCHAR(10) DEFAULT 'basic')",
        "CREATE TABLE {o} (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES {c}(id), "
        "total NUMERIC(10,2))",
        "CREATE INDEX {o}_cust ON {o} (customer_id)",
        "CREATE TABLE {s} (id INTEGER PRIMARY KEY)",
    ],
    "postgres": [
        "CREATE TABLE {c} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, ssn TEXT, "
        "tier VARCHAR(10) DEFAULT 'basic')",
        "COMMENT ON TABLE {c} IS 'People who buy'",
        "COMMENT ON COLUMN {c}.name IS 'Full name'",
        "CREATE TABLE {o} (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES {c}(id), "
        "total NUMERIC(10,2))",
        "CREATE INDEX {o}_cust ON {o} (customer_id)",
        "CREATE TABLE {s} (id INTEGER PRIMARY KEY)",
    ],
    "mysql": [
        "CREATE TABLE {c} (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL COMMENT 'Full name', "
        "ssn VARCHAR(11), tier VARCHAR(10) DEFAULT 'basic') COMMENT = 'People who buy'",
        "CREATE TABLE {o} (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, total DECIMAL(10,2), "
        "FOREIGN KEY (customer_id) REFERENCES {c}(id))",
        "CREATE INDEX {o}_cust ON {o} (customer_id)",
        "CREATE TABLE {s} (id INTEGER PRIMARY KEY)",
    ],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def shop(backend: Backend) -> dict[str, Any]:
    names = {"c": unique("sch_cust"), "o": unique("sch_ord"), "s": unique("sch_secret")}
    await backend.aexecute(*(sql.format(**names) for sql in DDL[backend.name]))
    await backend.aexecute(
        f"INSERT INTO {names['c']} (id, name, ssn) VALUES (1, 'Ann', '123'), (2, 'Bob', '456')",
        f"INSERT INTO {names['o']} (id, customer_id, total) VALUES (1, 1, 9.50), (2, 1, 3), (3, 2, 1)",
    )
    return {"backend": backend, **names}


def settings(shop: dict[str, Any]) -> dict[str, Any]:
    return {
        "allowed_tables": f"{shop['c']},{shop['o']}",
        "denied_columns": f"{shop['c']}.ssn",
        "audit_enabled": False,
    }


def table(result: Any, name: str) -> dict[str, Any]:
    return next(t for t in result.structured_content["tables"] if t["name"] == name)


async def test_describe_schema_lists_whitelisted_tables_compactly(shop: dict[str, Any]) -> None:
    backend: Backend = shop["backend"]
    async with backend.client(**settings(shop)) as client:
        result = await client.call_tool("describe_schema", {})
    assert not result.is_error, result.content
    data = result.structured_content
    names = [t["name"] for t in data["tables"]]
    assert sorted(names) == sorted([shop["c"], shop["o"]])
    assert shop["s"] not in result.content[0].text  # not whitelisted: never shown

    cust = table(result, shop["c"])
    assert cust["rows"] == 2 and "rows_estimated" not in cust  # small table: exact count
    lines = {line.split()[0]: line for line in cust["columns"]}
    assert lines["id"].split()[-1] == "PK"
    assert "NOT NULL" in lines["name"]
    assert "NOT NULL" not in lines["ssn"]
    assert "DEFAULT" in lines["tier"] and "basic" in lines["tier"]
    assert "DENIED" in lines["ssn"] and "DENIED" not in lines["name"]  # shown, not hidden
    assert "hint" in data and "DENIED" in data["hint"]

    orders = table(result, shop["o"])
    assert orders["rows"] == 3
    assert orders["foreign_keys"] == [f"customer_id -> {shop['c']}.id"]
    assert any(ix.startswith(f"{shop['o']}_cust(customer_id)") for ix in orders["indexes"])
    if backend.name != "sqlite":  # SQLite has no comments
        assert cust["comment"] == "People who buy"
        assert lines["name"].endswith("-- Full name")
    assert data["row_counts_from"]

    text = result.content[0].text  # the compact text form agents read
    assert f"{shop['c']} 2 rows" in text
    assert len(text) < len(json.dumps(data))


async def test_tables_filter_and_not_allowed(shop: dict[str, Any]) -> None:
    backend: Backend = shop["backend"]
    async with backend.client(**settings(shop)) as client:
        only = await client.call_tool("describe_schema", {"tables": [shop["o"]]})
        denied = await client.call_tool("describe_schema", {"tables": [shop["s"]]})
        unknown_db = await client.call_tool("describe_schema", {"database": "nope"})
    assert [t["name"] for t in only.structured_content["tables"]] == [shop["o"]]
    assert denied.is_error and denied.structured_content["error"]["code"] == "TABLE_NOT_ALLOWED"
    assert shop["c"] in denied.structured_content["error"]["hint"]
    assert unknown_db.structured_content["error"]["code"] == "INVALID_ARGUMENT"
    assert "main" in unknown_db.structured_content["error"]["hint"]


async def test_cached_until_refresh(shop: dict[str, Any]) -> None:
    backend: Backend = shop["backend"]
    async with backend.client(**settings(shop)) as client:
        first = await client.call_tool("describe_schema", {"tables": [shop["o"]]})
        await backend.aexecute(f"ALTER TABLE {shop['o']} ADD COLUMN note VARCHAR(20)")
        cached = await client.call_tool("describe_schema", {"tables": [shop["o"]]})
        fresh = await client.call_tool("describe_schema", {"tables": [shop["o"]], "refresh": True})
    assert table(first, shop["o"])["columns"] == table(cached, shop["o"])["columns"]
    assert any(c.startswith("note ") for c in table(fresh, shop["o"])["columns"])


async def test_schema_resources(shop: dict[str, Any]) -> None:
    backend: Backend = shop["backend"]
    async with backend.client(**settings(shop)) as client:
        templates = await client.list_resource_templates()
        whole = await client.read_resource("schema://main")
        one = await client.read_resource(f"schema://main/{shop['c']}")
        with pytest.raises(Exception) as denied:  # noqa: PT011 - a protocol error of the SDK's type
            await client.read_resource(f"schema://main/{shop['s']}")
    uris = {t.uri_template for t in templates.resource_templates}
    assert {"schema://{database}", "schema://{database}/{table}"} <= uris
    whole_text = whole.contents[0].text
    assert shop["c"] in whole_text and shop["o"] in whole_text and shop["s"] not in whole_text
    one_text = one.contents[0].text
    assert shop["c"] in one_text and shop["o"] not in one_text.split("\n", 1)[1]
    assert "ssn" in one_text and "DENIED" in one_text
    assert "TABLE_NOT_ALLOWED" in str(denied.value)
