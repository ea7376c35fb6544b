"""Prometheus metrics, liveness/readiness probes and optional OpenTelemetry spans.

``install_metrics(server)`` (called by ``build_server`` for the HTTP transports, and for
stdio when ``metrics_port`` is set) attaches a ``Metrics`` to the server and adds its
``observe`` to the tool boundary's ``after_call`` hooks: one counter increment and one
histogram observation per call, no I/O. Everything else (pool gauges, open transactions,
the audit writer's counters, slow queries) is read from the runtime when Prometheus scrapes.

Each server has its own ``CollectorRegistry`` (not the process-global one), so several
servers in one process (tests) never collide.

Endpoints, without auth and without data (no rows, no SQL, no parameters):

* ``/metrics``: the Prometheus text format;
* ``/healthz``: 200 while the process serves HTTP (liveness);
* ``/readyz``: 200 when every configured database answers ``SELECT 1`` within
  ``health_timeout_s`` (at most 2 s), 503 otherwise or while the runtime is starting.

On the HTTP transports they are routes of the main app (``mount_probes``); ``metrics_port``
additionally serves them on a separate loopback listener (``serve_probes``), which is the
only way to get them on stdio.

OpenTelemetry: the MCP SDK already opens a span ``tools/call <tool>`` around every call
(through ``opentelemetry-api``, which it depends on). With an SDK recording spans (the
``otel`` extra: ``opentelemetry-sdk``, exporter configured by the operator), ``observe``
adds sqlgate's facts to that span: outcome, error code, database, statement kind, verdict,
row counts — never the SQL text or parameters — and marks errors. Without a recording SDK
it costs one ``get_current_span()`` per call.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sqlgate import __version__
from sqlgate.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from sqlgate.calls import CallRecord
    from sqlgate.server.runtime import RuntimeHolder
    from sqlgate.settings import Settings

log = get_logger("sqlgate.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
READY_CACHE_S = 1.0  # a burst of probes costs one round trip per database
OTHER = "other"  # the label for a name that is not configured (bounded label sets)


class Metrics:
    """The per-server registry: call counters and latency updated per call, the rest on scrape."""

    def __init__(self, holder: RuntimeHolder, tools: Iterable[str], databases: Iterable[str]) -> None:
        self.holder = holder
        self.settings = holder.settings
        self._tools = frozenset(tools)
        self._databases = frozenset(databases)
        self.registry = CollectorRegistry(auto_describe=False)
        self.calls = Counter(
            "sqlgate_tool_calls", "Tool calls by tool, outcome (ok, error, cancelled) and error code",
            ["tool", "outcome", "code"], registry=self.registry,
        )
        self.latency = Histogram(
            "sqlgate_tool_call_duration_seconds", "Tool call latency by tool and database",
            ["tool", "database"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.denials = Counter(
            "sqlgate_denials", "Statements refused by the safety checks, by error code",
            ["code"], registry=self.registry,
        )
        self.registry.register(RuntimeCollector(holder))
        self._tracer = _otel_tracer()
        self._ready: tuple[float, bool, dict[str, str]] | None = None

    def observe(self, call: CallRecord, outcome: str, code: str | None, seconds: float) -> None:
        """The ``after_call`` hook: counters only, never blocks, never raises."""
        try:
            tool = call.tool if call.tool in self._tools else OTHER
            database = call.database or ""
            if database and database not in self._databases:
                database = OTHER
            self.calls.labels(tool, outcome, code or "").inc()
            self.latency.labels(tool, database).observe(seconds)
            if call.verdict == "denied":
                self.denials.labels(code or "").inc()
            if self._tracer is not None:
                self._span(call, tool, outcome, code, seconds)
        except Exception as exc:  # noqa: BLE001 - metrics must never fail a call
            log.warning("metrics: a call could not be counted", error=type(exc).__name__)

    def _span(self, call: CallRecord, tool: str, outcome: str, code: str | None, seconds: float) -> None:
        """sqlgate's facts on the MCP SDK's own ``tools/call <tool>`` span (the current one):
        nothing when no OpenTelemetry SDK records it."""
        trace = self._tracer
        span = trace.get_current_span()
        if not span.is_recording():
            return
        attributes: dict[str, Any] = {"sqlgate.outcome": outcome, "sqlgate.request_id": call.request_id,
                                      "sqlgate.duration_ms": round(seconds * 1000, 3)}
        optional = {
            "sqlgate.code": code, "db.namespace": call.database, "sqlgate.statement_kind": call.statement_kind,
            "sqlgate.verdict": call.verdict, "sqlgate.rows": call.rows, "sqlgate.rows_affected": call.rows_affected,
        }
        attributes |= {key: value for key, value in optional.items() if value is not None}
        span.set_attributes(attributes)
        if outcome == "error":
            span.set_status(trace.Status(trace.StatusCode.ERROR, code or outcome))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether every database answers now (cached for ``READY_CACHE_S``)."""
        now = time.monotonic()
        if self._ready is not None and now - self._ready[0] < READY_CACHE_S:
            return self._ready[1], {"status": "ready" if self._ready[1] else "not_ready",
                                    "databases": self._ready[2]}
        runtime = self.holder.runtime
        if runtime is None:
            return False, {"status": "starting"}
        timeout_s = min(self.settings.health_timeout_s, 2.0)
        databases = list(runtime.databases)
        answers = await asyncio.gather(*(_reachable(db, timeout_s) for db in databases))
        states = {db.name: "ok" if ok else "unreachable" for db, ok in zip(databases, answers, strict=True)}
        ready = all(answers)
        self._ready = (time.monotonic(), ready, states)
        return ready, {"status": "ready" if ready else "not_ready", "databases": states}


async def _reachable(database: Any, timeout_s: float) -> bool:
    async def ping() -> None:
        async with database.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
            await conn.rollback()

    try:
        await asyncio.wait_for(ping(), timeout_s)
    except Exception:  # noqa: BLE001 - any failure is "not reachable"
        return False
    return True


class RuntimeCollector(Collector):
    """Gauges and counters read from the runtime at scrape time (nothing while it is closed)."""

    def __init__(self, holder: RuntimeHolder) -> None:
        self.holder = holder

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily("sqlgate_info", "sqlgate version and transport", labels=["version", "transport"])
        info.add_metric([__version__, self.holder.settings.transport], 1)
        yield info
        runtime = self.holder.runtime
        if runtime is None:
            return
        pool = {
            name: GaugeMetricFamily(f"sqlgate_pool_{name}", text, labels=["database"])
            for name, text in (
                ("size", "Connections the pool keeps"), ("checked_out", "Connections in use"),
                ("overflow", "Connections open beyond the pool size"),
                ("waiting", "Calls waiting for a connection"),
            )
        }
        slow = CounterMetricFamily("sqlgate_slow_queries", "Statements slower than slow_query_ms since start",
                                   labels=["database"])
        for database in runtime.databases:
            stats = database.pool_stats()
            for name, family in pool.items():
                family.add_metric([database.name], getattr(stats, name))
            slow.add_metric([database.name], database.slow_queries)
        yield from pool.values()
        yield slow
        yield GaugeMetricFamily("sqlgate_open_transactions", "Interactive transactions open now",
                                value=len(runtime.transactions))
        if runtime.audit is not None:
            status = runtime.audit.status()
            yield GaugeMetricFamily("sqlgate_audit_queue", "Audit records waiting to be written",
                                    value=status.queued + status.pending_retry)
            yield CounterMetricFamily("sqlgate_audit_written", "Audit records written", value=status.written)
            yield CounterMetricFamily("sqlgate_audit_dropped", "Audit records lost (queue full, sink broken)",
                                      value=status.dropped + status.rejected)
            yield GaugeMetricFamily("sqlgate_audit_up", "1 while the audit sink works",
                                    value=1 if status.state == "ok" else 0)


def _otel_tracer() -> Any:
    """``opentelemetry.trace`` when OpenTelemetry is importable; None otherwise."""
    try:
        return importlib.import_module("opentelemetry.trace")
    except ImportError:
        return None


def install_metrics(server: Any) -> Metrics:
    """Attach a ``Metrics`` to ``server`` and count every call from now on."""
    settings: Settings = server.runtime_holder.settings
    tools = [tool.name for tool in server._tool_manager.list_tools()]
    metrics = Metrics(server.runtime_holder, tools, [db.name for db in settings.resolved_databases()])
    server.metrics = metrics
    server.after_call.append(metrics.observe)
    return metrics


# -- HTTP ---------------------------------------------------------------------


def _json(status: int, body: dict[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(body).encode()


async def answer(metrics: Metrics, path: str) -> tuple[int, str, bytes]:
    """(status, content type, body) for a probe path."""
    if path == "/metrics":
        return 200, CONTENT_TYPE, metrics.exposition()
    if path == "/healthz":
        return _json(200, {"status": "ok"})
    if path == "/readyz":
        ready, body = await metrics.readiness()
        return _json(200 if ready else 503, body)
    return _json(404, {"error": "not found"})


def mount_probes(app: Any, metrics: Metrics) -> None:
    """``/metrics``, ``/readyz`` (and ``/healthz`` unless the app has one) on a Starlette app."""
    from starlette.responses import Response

    async def endpoint(request: Any) -> Any:
        status, content_type, body = await answer(metrics, request.url.path)
        return Response(body, status_code=status, media_type=content_type,
                        headers={"Cache-Control": "no-store"})

    present = {getattr(route, "path", None) for route in app.routes}
    for path in ("/metrics", "/readyz", "/healthz"):
        if path not in present:
            app.add_route(path, endpoint, methods=["GET"])
    port = metrics.settings.metrics_port
    if port is None:
        return
    inner_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(starlette_app: Any) -> AsyncIterator[Any]:
        listener = await serve_probes(metrics, metrics.settings.host, port)
        try:
            async with inner_lifespan(starlette_app) as state:
                yield state
        finally:
            listener.close()

    app.router.lifespan_context = lifespan


async def serve_probes(metrics: Metrics, host: str, port: int) -> asyncio.Server:
    """The probes on their own listener (``metrics_port``): a minimal HTTP/1.1 responder."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if method not in ("GET", "HEAD"):
                status, content_type, body = _json(405, {"error": "method not allowed"})
            else:
                status, content_type, body = await answer(metrics, target.split("?", 1)[0])
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n".encode()
                + (body if method != "HEAD" else b"")
            )
            await writer.drain()
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    log.info("metrics and probes listening", host=host, port=port)
    return server
