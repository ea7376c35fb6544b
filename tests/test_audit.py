"""The audit log: every tool call recorded, nothing lost at a clean shutdown, a broken sink
degrades health without failing calls."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate import audit, migrations
from sqlgate.db.engines import async_url
from tests.conftest import Backend

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"


def demo_client(data_dir: Path, **settings: Any) -> Any:
    """An in-memory client on the demo database, its audit file in ``data_dir``."""
    from mcp import Client

    from sqlgate.server.app import build_server
    from sqlgate.settings import load_settings

    return Client(build_server(load_settings({"data_dir": str(data_dir), **settings})))


def audit_rows(data_dir: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(data_dir / "audit.sqlite3")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM sqlgate_audit ORDER BY id")]
    finally:
        conn.close()


async def test_every_call_is_recorded_with_its_fields(tmp_path: Path) -> None:
    n = 20
    async with demo_client(tmp_path) as client:
        for i in range(1, n + 1):
            result = await client.call_tool(
                "execute_query",
                {"query": "SELECT id, name FROM customers WHERE id = :id", "parameters": {"id": i}},
            )
            assert not result.is_error
        denied = await client.call_tool("execute_query", {"query": "DELETE FROM customers WHERE id = 1"})
        assert denied.is_error
        bad = await client.call_tool("execute_query", {"query": "SELECT 1", "max_rows": 0})
        assert bad.is_error
    rows = audit_rows(tmp_path)
    assert len(rows) == n + 2
    assert len({row["request_id"] for row in rows}) == n + 2
    ok = rows[0]
    assert ok["tool"] == "execute_query" and ok["database_name"] == "demo"
    assert ok["sql_text"] == "SELECT id, name FROM customers WHERE id = :id"
    assert json.loads(ok["parameters"]) == {"id": "<redacted>"}  # the default: names only
    assert ok["verdict"] == "allowed" and ok["code"] is None and ok["outcome"] == "ok"
    assert ok["statement_kind"] == "select" and ok["table_names"] == "customers"
    assert ok["row_count"] == 1 and ok["duration_ms"] > 0
    assert ok["at"] and ok["transport"] == "stdio" and ok["client"]
    refused = rows[n]
    assert refused["sql_text"] == "DELETE FROM customers WHERE id = 1"
    assert refused["verdict"] == "denied" and refused["code"] == "WRITE_NOT_ALLOWED"
    assert refused["outcome"] == "error" and refused["row_count"] is None
    invalid = rows[n + 1]
    assert invalid["code"] == "INVALID_ARGUMENT" and invalid["outcome"] == "error"
    assert invalid["sql_text"] == "SELECT 1"  # refused for its arguments: what was sent is kept


async def test_resource_reads_are_recorded_too(tmp_path: Path) -> None:
    """schema:// reads are calls like the tools: each one an audit row, with what it described."""
    async with demo_client(tmp_path) as client:
        text = await client.read_resource("schema://demo/customers")
        assert "customers" in str(text)
        with pytest.raises(Exception):  # noqa: B017,PT011 - the SDK's error type for a failed read
            await client.read_resource("schema://demo/no_such_table")
    rows = [row for row in audit_rows(tmp_path) if row["tool"] == "read_resource"]
    assert len(rows) == 2
    assert rows[0]["database_name"] == "demo" and rows[0]["table_names"] == "customers"
    assert rows[0]["outcome"] == "ok"
    assert rows[1]["outcome"] == "error" and rows[1]["code"] == "TABLE_NOT_ALLOWED"


@pytest.mark.parametrize("mode", ["hash", "plain", "redact"])
async def test_parameter_modes(tmp_path: Path, mode: str) -> None:
    async with demo_client(tmp_path, audit_parameters=mode) as client:
        await client.call_tool(
            "execute_query", {"query": "SELECT id FROM customers WHERE name = :name", "parameters": {"name": "Ada"}}
        )
    stored = json.loads(audit_rows(tmp_path)[0]["parameters"])
    expected = {
        "hash": {"name": "sha256:" + hashlib.sha256(b'"Ada"').hexdigest()},
        "plain": {"name": "Ada"},
        "redact": {"name": "<redacted>"},
    }[mode]
    assert stored == expected


async def test_clean_shutdown_in_a_burst_loses_nothing(tmp_path: Path) -> None:
    n = 300
    async with demo_client(tmp_path) as client:
        calls = [
            client.call_tool("execute_query", {"query": "SELECT :i AS i", "parameters": {"i": i}})
            for i in range(n)
        ]
        results = await asyncio.gather(*calls)
        assert not any(r.is_error for r in results)
        # Leave at once: most records are still queued when the lifespan ends.
    assert len(audit_rows(tmp_path)) == n


async def test_stdio_server_flushes_at_end_of_input(tmp_path: Path) -> None:
    from mcp import Client, StdioServerParameters

    n = 200
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "sqlgate", "serve", "--data-dir", str(tmp_path), "--log-level", "WARNING"],
    )
    async with Client(params) as client:
        results = await asyncio.gather(*(
            client.call_tool("execute_query", {"query": "SELECT :i AS i", "parameters": {"i": i}})
            for i in range(n)
        ))
        assert not any(r.is_error for r in results)
    for _ in range(50):  # the server may still be exiting after the client let go
        if (tmp_path / "audit.sqlite3").exists() and len(audit_rows(tmp_path)) == n:
            break
        await asyncio.sleep(0.1)
    assert len(audit_rows(tmp_path)) == n


async def test_audit_in_the_target_database_after_migrate(backend: Backend) -> None:
    await migrations.upgrade(backend.url)
    marker = f"m_{secrets.token_hex(4)}"
    async with backend.client(audit_database_url=backend.url) as client:
        for _ in range(5):
            result = await client.call_tool("execute_query", {"query": f"SELECT 1 AS {marker}"})
            assert not result.is_error, result.content
        report = (await client.call_tool("health_check", {})).structured_content
    assert report["audit"]["state"] == "ok" and report["audit"]["migrations"] == "current"
    engine = create_async_engine(async_url(backend.url))
    try:
        async with engine.connect() as conn:
            count = (await conn.execute(
                text("SELECT COUNT(*) FROM sqlgate_audit WHERE sql_text LIKE :m"), {"m": f"%{marker}%"}
            )).scalar_one()
    finally:
        await engine.dispose()
    assert count == 5


@pytest.mark.parametrize("sink", ["unreachable", "no_table"])
async def test_broken_sink_degrades_health_but_calls_succeed(tmp_path: Path, sink: str) -> None:
    url = UNREACHABLE if sink == "unreachable" else f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    async with demo_client(tmp_path, audit_database_url=url) as client:
        for i in range(3):
            result = await client.call_tool("execute_query", {"query": "SELECT :i AS i", "parameters": {"i": i}})
            assert not result.is_error, result.content
        await asyncio.sleep(0.2)  # let the writer try
        report = (await client.call_tool("health_check", {})).structured_content
    assert report["status"] == "degraded"
    assert report["audit"]["state"] == "broken" and report["audit"]["last_error"]
    assert any("audit" in reason for reason in report["reasons"])
    assert report["databases"][0]["status"] == "healthy"


async def test_sink_that_comes_back_gets_the_kept_records(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'later.sqlite3'}"
    async with demo_client(tmp_path, audit_database_url=url) as client:
        await client.call_tool("execute_query", {"query": "SELECT 1 AS one"})
        await asyncio.sleep(0.2)
        assert (await client.call_tool("health_check", {})).structured_content["audit"]["state"] == "broken"
        await migrations.upgrade(url)  # the operator fixes the sink
    conn = sqlite3.connect(tmp_path / "later.sqlite3")
    try:
        # The first call and the health_check both reach the table once it exists.
        assert conn.execute("SELECT COUNT(*) FROM sqlgate_audit").fetchone()[0] == 2
    finally:
        conn.close()


async def test_audit_disabled_writes_nothing(tmp_path: Path) -> None:
    async with demo_client(tmp_path, audit_enabled=False) as client:
        await client.call_tool("execute_query", {"query": "SELECT 1 AS one"})
        report = (await client.call_tool("health_check", {})).structured_content
    assert report["audit"] == {"enabled": False, "state": "disabled"}
    assert not (tmp_path / "audit.sqlite3").exists()


def test_audit_head_constant_matches_the_migrations() -> None:
    assert migrations.head("sqlgate") == audit.SQLGATE_AUDIT_HEAD


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_signal_on_stdio_flushes_the_queue(tmp_path: Path, signal_name: str) -> None:
    """A host that stops sqlgate with SIGTERM (or a person with Ctrl-C) right after the last
    answer loses no record, and the process ends cleanly, promptly."""
    import signal
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, "-m", "sqlgate", "serve", "--data-dir", str(tmp_path), "--log-level", "WARNING"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def send(message: dict[str, Any]) -> None:
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
        proc.stdin.flush()

    try:
        send({"id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        assert '"id":0' in proc.stdout.readline()
        send({"method": "notifications/initialized"})
        n = 20
        for i in range(1, n + 1):
            send({"id": i, "method": "tools/call",
                  "params": {"name": "execute_query", "arguments": {"query": "SELECT 1 AS one"}}})
        for _ in range(n):
            proc.stdout.readline()
        proc.send_signal(getattr(signal, signal_name))
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0  # a clean stop, though stdin was never closed
    assert len(audit_rows(tmp_path)) == n


# -- poison-proof (issue 13) ------------------------------------------------------------

def test_storable_text_escapes_visibly_and_losslessly() -> None:
    assert audit.storable_text("plain \\ text") == "plain \\ text"  # untouched without hostile characters
    assert audit.storable_text("DROP TABLE \ud800") == "DROP TABLE \\ud800"
    assert audit.storable_text("a\x00b") == "a\\u0000b"
    # In a text that needed an escape, backslashes are doubled: the escapes read back exactly.
    assert audit.storable_text("\\ud800 \udfff") == "\\\\ud800 \\udfff"
    stored = audit.storable_text("x" * 100_000, None, audit._TEXT_BYTES)
    assert stored is not None and len(stored.encode()) <= audit._TEXT_BYTES and "not stored" in stored
    assert audit.storable_text("é" * 50, 10) == "é" * 10  # short columns are cut to fit
    # Every result encodes as UTF-8 and holds no NUL.
    for text_ in ("\ud800", "\x00", "\udbff\udc00x", "ok 😀"):
        out = audit.storable_text(text_)
        assert out is not None and "\x00" not in out
        out.encode("utf-8")


def test_unstorable_parameters_are_marked_not_raised() -> None:
    huge = 10**5000  # str(int) refuses past 4,300 digits
    shown = audit.redact_parameters({"n": huge}, "plain")
    assert shown is not None and "unstorable" in shown


HOSTILE_SQL = [
    "DROP TABLE \ud800",  # a lone surrogate in a denied statement (the original poison)
    "SELECT '\udfff' AS s",
    "SELECT 'a\x00b' AS s",
    "SELECT 1 AS one -- " + "é" * 1_000_000,  # a 1 MB text
]


async def test_hostile_texts_never_poison_the_log(backend: Backend) -> None:
    """Surrogates, NUL, 1 MB texts and odd parameters in audited calls: every call is still
    written, later calls too, and the hostile texts are stored escaped, not lost."""
    await migrations.upgrade(backend.url)
    marker = f"h_{secrets.token_hex(4)}"
    engine = create_async_engine(async_url(backend.url))
    try:
        async with engine.connect() as conn:
            before = (await conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM sqlgate_audit"))).scalar_one()
        async with backend.client(audit_database_url=backend.url, audit_parameters="plain") as client:
            for sql in HOSTILE_SQL:
                await client.call_tool("execute_query", {"query": f"{sql} /* {marker} */"})
            await client.call_tool("execute_query", {
                "query": f"SELECT :p AS p /* {marker} */", "parameters": {"p": "\ud800\x00"}})
            await client.call_tool("execute_query", {
                "query": f"SELECT :p AS p /* {marker} */", "parameters": "not an object"})
            for i in range(5):
                result = await client.call_tool("execute_query", {"query": f"SELECT {i} AS n /* {marker} */"})
                assert not result.is_error, result.content
            report = (await client.call_tool("health_check", {})).structured_content
        assert report["audit"]["state"] == "ok", report["audit"]
        assert report["audit"].get("rejected", 0) == 0
        async with engine.connect() as conn:
            rows = (await conn.execute(
                text("SELECT sql_text, parameters, tool FROM sqlgate_audit WHERE id > :b ORDER BY id"), {"b": before}
            )).all()
    finally:
        await engine.dispose()
    assert len(rows) == len(HOSTILE_SQL) + 2 + 5 + 1  # every call, the health_check too
    assert rows[0][0] == f"DROP TABLE \\ud800 /* {marker} */"
    assert rows[1][0].startswith("SELECT '\\udfff'")
    assert rows[2][0].startswith("SELECT 'a\\u0000b'")
    assert rows[4][1] == '{"p": "\\ud800\\\\u0000"}' or "\\ud800" in rows[4][1]
    assert [r[2] for r in rows[-6:-1]] == ["execute_query"] * 5 and rows[-1][2] == "health_check"


async def test_a_refused_record_is_skipped_and_counted_never_blocking(backend: Backend) -> None:
    """A record the sink refuses (here: a NOT NULL column left empty) is retried alone,
    logged once and counted; the records around it are written."""
    from sqlgate.settings import load_settings

    await migrations.upgrade(backend.url)
    log_ = audit.AuditLog(load_settings({"audit_database_url": backend.url, "data_dir": str(backend.data_dir)}))
    await log_.start()
    marker = f"r_{secrets.token_hex(4)}"
    try:
        good = {
            "at": audit.dt.datetime(2026, 1, 1), "request_id": "r", "transport": "stdio", "client": None,
            "tool": "execute_query", "database_name": None, "sql_text": marker, "parameters": None,
            "verdict": None, "code": None, "statement_kind": None, "table_names": None, "row_count": None,
            "rows_affected": None, "duration_ms": 1.0, "outcome": "ok",
        }
        bad = {**good, "tool": None}
        await log_._write([good, bad, good, good])
        assert log_.written == 3 and log_.rejected == 1 and log_.state == "ok"
        assert log_.status().pending_retry == 0
    finally:
        await log_.close()
    engine = create_async_engine(async_url(backend.url))
    try:
        async with engine.connect() as conn:
            count = (await conn.execute(
                text("SELECT COUNT(*) FROM sqlgate_audit WHERE sql_text = :m"), {"m": marker})).scalar_one()
    finally:
        await engine.dispose()
    assert count == 3
