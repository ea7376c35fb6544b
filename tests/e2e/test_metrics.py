"""/metrics, /healthz and /readyz on real server processes (issue 17): counted calls,
latency, pool/transaction/audit gauges, denials; no auth and no data; stdio with metrics_port."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.e2e.test_http import SQLGATE, TOKEN, Served, free_port, start, stop

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One authenticated Streamable HTTP server with the audit log on, for the module."""
    tmp = tmp_path_factory.mktemp("metrics")
    server = start(tmp, "streamable-http", "--audit-enabled", "--slow-query-ms", "1",
                   env={"SQLGATE_AUTH_TOKEN": TOKEN})
    yield server
    stop(server)


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample line."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            found[key] = float(value)
    return found


def scrape(port: int, path: str = "/metrics") -> httpx2.Response:
    return httpx2.get(f"http://127.0.0.1:{port}{path}", timeout=10)


async def test_calls_latency_denials_and_gauges_are_exported(served: Served) -> None:
    async with served.client() as client:
        ok = await client.call_tool("execute_query", {"query": "SELECT name FROM http_items WHERE id = 1"})
        assert not ok.is_error
        denied = await client.call_tool("execute_query", {"query": "DELETE FROM http_items"})
        assert denied.is_error
        code = denied.structured_content["error"]["code"]
        # Surely past slow_query_ms=1 whatever the machine (a point read can take < 1 ms).
        slow = await client.call_tool("execute_query", {"query": (
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 300000) "
            "SELECT count(*) AS n FROM c")})
        assert not slow.is_error, slow.content
    deadline = time.monotonic() + 10
    while True:  # the audit writer batches: wait until both calls are written
        metrics = samples(scrape(served.port).text)
        if metrics.get("sqlgate_audit_written_total", 0) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert metrics['sqlgate_tool_calls_total{code="",outcome="ok",tool="execute_query"}'] >= 1
    assert metrics[f'sqlgate_tool_calls_total{{code="{code}",outcome="error",tool="execute_query"}}'] >= 1
    assert metrics[f'sqlgate_denials_total{{code="{code}"}}'] >= 1
    assert metrics['sqlgate_tool_call_duration_seconds_count{database="main",tool="execute_query"}'] >= 1
    assert metrics['sqlgate_tool_call_duration_seconds_bucket{database="main",le="+Inf",tool="execute_query"}'] >= 1
    for gauge in ("size", "checked_out", "overflow", "waiting"):
        assert f'sqlgate_pool_{gauge}{{database="main"}}' in metrics
    assert metrics['sqlgate_slow_queries_total{database="main"}'] >= 1  # slow_query_ms=1
    assert metrics["sqlgate_open_transactions"] == 0
    assert metrics["sqlgate_audit_written_total"] >= 2
    assert metrics["sqlgate_audit_dropped_total"] == 0
    assert metrics["sqlgate_audit_up"] == 1
    assert "sqlgate_audit_queue" in metrics


async def test_an_unknown_tool_name_does_not_become_a_label(served: Served) -> None:
    async with served.client() as client:
        result = await client.call_tool("no_such_tool_" + "x" * 20, {})
        assert result.is_error
    text = scrape(served.port).text
    assert "no_such_tool_" not in text
    assert 'tool="other"' in text


def test_probes_need_no_token_and_reveal_no_data(served: Served) -> None:
    mcp = httpx2.post(f"http://127.0.0.1:{served.port}/mcp", json={}, timeout=10)
    assert mcp.status_code == 401  # the MCP endpoint still wants the token
    for path in ("/metrics", "/healthz", "/readyz"):
        answer = scrape(served.port, path)
        assert answer.status_code == 200, (path, answer.text)
        assert "http_items" not in answer.text and "SELECT" not in answer.text
    assert scrape(served.port, "/readyz").json() == {"status": "ready", "databases": {"main": "ok"}}
    assert scrape(served.port, "/healthz").json() == {"status": "ok"}


def test_readyz_is_503_while_a_database_is_unreachable(tmp_path: Path) -> None:
    dead = free_port()  # nothing listens there
    server = start(tmp_path, "streamable-http", "--database-url", f"postgresql://postgres@127.0.0.1:{dead}/x")
    try:
        assert scrape(server.port, "/healthz").status_code == 200  # alive
        ready = scrape(server.port, "/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        assert ready.json()["databases"] == {"main": "unreachable"}
    finally:
        stop(server)


async def test_stdio_serves_metrics_only_on_metrics_port(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "stdio.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE s (id INTEGER PRIMARY KEY)")
    port = free_port()
    params = StdioServerParameters(
        command=SQLGATE,
        args=["serve", "--database-url", f"sqlite:///{db}", "--data-dir", str(tmp_path), "--no-audit-enabled",
              "--metrics-port", str(port)],
        env={"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)},
    )
    async with Client(stdio_client(params)) as client:
        result = await client.call_tool("execute_query", {"query": "SELECT count(*) AS n FROM s"})
        assert not result.is_error
        text = scrape(port).text
        assert re.search(r'sqlgate_tool_calls_total\{code="",outcome="ok",tool="execute_query"\} 1\.0', text)
        assert 'transport="stdio"' in text
        assert scrape(port, "/readyz").status_code == 200
        assert scrape(port, "/nothing").status_code == 404


async def test_a_span_per_call_with_the_otel_extra(sqlite_backend: Any) -> None:
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    async with Client(sqlite_backend.server(transport="streamable-http", audit_enabled=False)) as client:
        await client.call_tool("execute_query", {"query": "SELECT 1 AS one"})
        await client.call_tool("execute_query", {"query": "DROP TABLE nothing"})
    spans = [s for s in exporter.get_finished_spans() if s.name == "tools/call execute_query"]
    assert len(spans) == 2  # the MCP SDK's span per call, with sqlgate's facts on it
    ok, denied = sorted(spans, key=lambda s: s.start_time)
    assert ok.attributes["sqlgate.outcome"] == "ok" and ok.attributes["db.namespace"] == "main"
    assert denied.attributes["sqlgate.outcome"] == "error" and denied.attributes["sqlgate.code"]
    assert denied.status.status_code.name == "ERROR"
    assert all("SELECT" not in str(value) for s in spans for value in s.attributes.values())  # no SQL text
