"""Every common column type comes back as the documented JSON-safe value."""

from __future__ import annotations

import pytest

from tests.conftest import Backend

pytestmark = pytest.mark.anyio

TYPED = {
    "postgres": (
        "CREATE TABLE typed (i INTEGER, b BIGINT, n NUMERIC(30,10), f DOUBLE PRECISION, t TEXT, "
        "ok BOOLEAN, d DATE, ts TIMESTAMP, tz TIMESTAMPTZ, tm TIME, u UUID, raw BYTEA, "
        "j JSONB, iv INTERVAL, arr INTEGER[])",
        "INSERT INTO typed VALUES (1, 9007199254740993, 12345678901234567890.0123456789, 1.5, 'x', true, "
        "'2024-02-29', '2024-02-29 13:14:15', '2024-02-29 13:14:15+00', '13:14:15', "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff', '{\"a\": [1, 2]}', '1 day 02:03:04', '{1,2}')",
        {
            "i": 1, "b": 9007199254740993, "n": "12345678901234567890.0123456789", "f": 1.5, "t": "x",
            "ok": True, "d": "2024-02-29", "ts": "2024-02-29T13:14:15", "tz": "2024-02-29T13:14:15+00:00",
            "tm": "13:14:15", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "raw": "base64:AP8=",
            "j": {"a": [1, 2]}, "iv": "P1DT2H3M4S", "arr": [1, 2],
        },
    ),
    "mysql": (
        "CREATE TABLE typed (i INT, b BIGINT, n DECIMAL(30,10), f DOUBLE, t TEXT, ok BOOLEAN, d DATE, "
        "ts DATETIME, tm TIME, raw VARBINARY(10), j JSON)",
        "INSERT INTO typed VALUES (1, 9007199254740993, 12345678901234567890.0123456789, 1.5, 'x', true, "
        "'2024-02-29', '2024-02-29 13:14:15', '13:14:15', 0x00ff, '{\"a\": [1, 2]}')",
        {
            "i": 1, "b": 9007199254740993, "n": "12345678901234567890.0123456789", "f": 1.5, "t": "x",
            "ok": 1, "d": "2024-02-29", "ts": "2024-02-29T13:14:15", "tm": "P0DT13H14M15S",
            "raw": "base64:AP8=", "j": '{"a": [1, 2]}',
        },
    ),
    "sqlite": (
        "CREATE TABLE typed (i INTEGER, b INTEGER, f REAL, t TEXT, raw BLOB, d DATE)",
        "INSERT INTO typed VALUES (1, 9007199254740993, 1.5, 'x', x'00ff', '2024-02-29')",
        {"i": 1, "b": 9007199254740993, "f": 1.5, "t": "x", "raw": "base64:AP8=", "d": "2024-02-29"},
    ),
}


async def test_type_conversion(backend: Backend) -> None:
    ddl, insert, expected = TYPED[backend.name]
    await backend.aexecute("DROP TABLE IF EXISTS typed", ddl, insert)
    async with backend.client(allowed_tables="typed") as client:
        result = await client.call_tool("execute_query", {"query": "SELECT * FROM typed"})
    assert not result.is_error, result.content
    data = result.structured_content
    got = dict(zip(data["columns"], data["rows"][0], strict=True))
    if backend.name == "mysql" and got["tm"] != expected["tm"]:
        # TIME arrives as a timedelta (a duration, per the documented mapping).
        assert got["tm"].startswith("P")
        got["tm"] = expected["tm"]
    assert got == expected


@pytest.fixture(params=["postgres", "sqlite"])
def decoding_backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.getfixturevalue(f"{request.param}_backend")  # (a sync fixture sets it up)
    return backend


async def test_a_value_the_driver_cannot_read_says_how_to_read_it(decoding_backend: Backend) -> None:
    """PostgreSQL dates before year 1 or after 9999 have no Python value (asyncpg: "ordinal
    must be >= 1"), and SQLite text that is not UTF-8 cannot be decoded: the statement ran,
    so the error says the value cannot be read (not "the database rejected the statement")
    and the hint's way of reading it works. (MySQL/MariaDB hand zero dates over as text.)"""
    backend = decoding_backend
    unreadable, hint, readable, value = {
        "postgres": ("SELECT '4713-01-01 BC'::date AS a", "::text",
                     "SELECT '4713-01-01 BC'::date::text AS a", "4713-01-01 BC"),
        "sqlite": ("SELECT CAST(x'80ff' AS TEXT) AS a", "hex(col)",
                   "SELECT hex(CAST(x'80ff' AS TEXT)) AS a", "80FF"),
    }[backend.name]
    async with backend.client(allowed_tables="") as client:
        failed = await client.call_tool("execute_query", {"query": unreadable})
        read = await client.call_tool("execute_query", {"query": readable})
    error = failed.structured_content["error"]
    assert error["code"] == "DB_ERROR" and error["message"].startswith("a value in the result cannot be read"), error
    assert hint in error["hint"], error
    assert read.structured_content["rows"] == [[value]], read.structured_content


async def test_postgres_infinity_dates_are_shown_as_infinity(postgres_backend: Backend) -> None:
    """asyncpg decodes 'infinity' timestamps and dates as stand-ins equal to year 9999's last
    instant: results showed "9999-12-31T23:59:59.999999" (and year 1 for -infinity) for a
    value that is no date. A real 9999-12-31 value keeps its ISO form."""
    query = ("SELECT 'infinity'::timestamp AS a, '-infinity'::timestamptz AS b, 'infinity'::date AS c, "
             "'-infinity'::date AS d, '9999-12-31 23:59:59.999999'::timestamp AS e, '9999-12-31'::date AS f")
    async with postgres_backend.client(allowed_tables="") as client:
        result = await client.call_tool("execute_query", {"query": query})
    assert result.structured_content["rows"] == [
        ["infinity", "-infinity", "infinity", "-infinity", "9999-12-31T23:59:59.999999", "9999-12-31"]
    ], result.structured_content
