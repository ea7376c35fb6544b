"""Parameter values checked before the driver (issue 13): values no database can take are
INVALID_ARGUMENT naming the parameter and the expected type, on every database, in
execute_query and transaction_manager alike."""

from __future__ import annotations

from typing import Any

import pytest

from sqlgate.db.parameters import check_values
from sqlgate.errors import InvalidArgument
from tests.conftest import Backend, unique

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


BAD = [
    pytest.param(float("inf"), "finite number", id="1e400"),
    pytest.param(float("nan"), "finite number", id="nan"),
    pytest.param(10**30, "64-bit integer", id="10**30"),
    pytest.param(-(10**19), "64-bit integer", id="-10**19"),
    pytest.param("a\ud800b", "valid Unicode", id="lone-surrogate"),
    pytest.param({"k": "\udfff"}, "valid Unicode", id="surrogate-in-object"),
    pytest.param([1, float("inf")], "finite number", id="inf-in-array"),
]


@pytest.mark.parametrize(("value", "expected"), BAD)
def test_check_values_names_the_parameter_and_type(value: Any, expected: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_values({"p": value})
    assert ":p" in refused.value.message and expected in refused.value.message


def test_check_values_lets_ordinary_values_through() -> None:
    check_values({"a": 1, "b": 2**63 - 1, "c": -(2**63), "d": 1.5, "e": "é😀", "f": None, "g": True,
                  "h": {"x": [1, "y"]}, "i": "a\x00b"})


def error(result: Any) -> dict[str, Any]:
    assert result.is_error, result.content
    return dict(result.structured_content["error"])


# (1e400 cannot travel through the in-memory client, which sends infinity as null: the
# stdio and HTTP tests in tests/e2e/test_sessions_protocol.py send it on the wire.)
@pytest.mark.parametrize(("value", "expected"), [p for p in BAD if p.id in ("10**30", "lone-surrogate")])
async def test_bad_values_never_reach_the_driver(backend: Backend, value: Any, expected: str) -> None:
    table = unique("pv")
    await backend.aexecute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(20))")
    async with backend.client(mode="read_write", allowed_tables=table) as client:
        query = await client.call_tool("execute_query", {
            "query": f"SELECT id FROM {table} WHERE id = :p", "parameters": {"p": value}})
        insert = await client.call_tool("transaction_manager", {"operations": [
            {"query": f"INSERT INTO {table} (id, name) VALUES (1, :p)", "parameters": {"p": value}}]})
    for result in (query, insert):
        body = error(result)
        assert body["code"] == "INVALID_ARGUMENT", body
        assert ":p" in body["message"] and expected in body["message"]


async def test_postgres_object_for_a_scalar_names_the_type(postgres_backend: Backend) -> None:
    table = unique("pv")
    await postgres_backend.aexecute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
    async with postgres_backend.client(allowed_tables=table) as client:
        obj = await client.call_tool("execute_query", {
            "query": f"SELECT id FROM {table} WHERE id = :p", "parameters": {"p": {"a": 1}}})
        big = await client.call_tool("execute_query", {
            "query": f"SELECT id FROM {table} WHERE id = :p", "parameters": {"p": 2**40}})
        nul = await client.call_tool("execute_query", {
            "query": f"SELECT id FROM {table} WHERE name = :p", "parameters": {"p": "a\x00b"}})
    assert error(obj)["code"] == "INVALID_ARGUMENT" and "an object is not a valid int4" in error(obj)["message"]
    assert error(big)["code"] == "INVALID_ARGUMENT" and "out of range for int4" in error(big)["message"]
    assert error(nul)["code"] == "INVALID_ARGUMENT" and "NUL" in error(nul)["message"]


async def test_mysql_value_that_does_not_fit_its_column(mysql_backend: Backend) -> None:
    table = unique("pv")
    await mysql_backend.aexecute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, n INTEGER, name VARCHAR(5))")
    async with mysql_backend.client(mode="read_write", allowed_tables=table) as client:
        obj = await client.call_tool("execute_query", {
            "query": f"INSERT INTO {table} (id, n) VALUES (1, :p)", "parameters": {"p": {"a": 1}}})
        long = await client.call_tool("execute_query", {
            "query": f"INSERT INTO {table} (id, name) VALUES (2, :p)", "parameters": {"p": "x" * 50}})
    assert error(obj)["code"] == "INVALID_ARGUMENT" and "does not fit" in error(obj)["message"]
    assert error(long)["code"] == "INVALID_ARGUMENT"
