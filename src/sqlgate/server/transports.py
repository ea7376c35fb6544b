"""Running the server on stdio, SSE or Streamable HTTP.

HTTP rules: bind 127.0.0.1 unless told otherwise; DNS-rebinding protection always on
(foreign ``Host`` → 421, foreign ``Origin`` → 403; ``allowed_hosts``/``allowed_origins``
add names); bearer tokens when configured (server/auth.py). A non-loopback bind without a
token is refused unless ``allow_unauthenticated`` says so (then it is logged as a warning).
On SIGTERM uvicorn stops accepting, lets in-flight calls finish for up to
``shutdown_timeout_s``, then the lifespan closes the pools.

stdio: SIGINT (Ctrl-C) and SIGTERM stop the server the same way — the lifespan rolls
back open transactions, flushes the audit log and closes the pools — and the process exits
0 without waiting for the thread that is blocked reading stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import math
import os
import signal
import stat
import sys
from collections.abc import Callable
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings

from sqlgate.errors import ConfigError
from sqlgate.logging import get_logger
from sqlgate.server.app import build_server
from sqlgate.server.auth import load_tokens
from sqlgate.server.body_limit import JsonRpcBodyLimit, body_limit
from sqlgate.server.sessions import serve_sessions
from sqlgate.server.stdio import run_stdio_session
from sqlgate.settings import Settings

log = get_logger("sqlgate.server")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection stays on: only the bound host names (and the configured ones) pass."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    if not is_loopback(settings.host) and settings.host not in ("0.0.0.0", "::"):  # noqa: S104
        hosts.append(f"{settings.host}:*")
    hosts += [h for h in settings.allowed_hosts if h not in hosts]
    origins = [f"http://{h}" for h in hosts] + [f"https://{h}" for h in hosts[3:]]
    origins += [o for o in settings.allowed_origins if o not in origins]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=origins,
    )


def check_exposure(settings: Settings) -> bool:
    """Whether HTTP requires a token; refuses a public bind without one unless allowed."""
    authenticated = bool(load_tokens(settings))
    if not is_loopback(settings.host) and not authenticated:
        if not settings.allow_unauthenticated:
            raise ConfigError(
                f"refusing to serve {settings.transport} on {settings.host} without authentication",
                "set SQLGATE_AUTH_TOKEN (or --auth-token-file), bind --host 127.0.0.1, or pass "
                "--allow-unauthenticated if something in front of sqlgate authenticates",
            )
        log.warning(
            "serving on a non-loopback address WITHOUT authentication (allow_unauthenticated)",
            host=settings.host,
        )
    return authenticated


def http_app(server: Any, settings: Settings) -> Any:
    """The Starlette app for the configured HTTP transport."""
    security = transport_security(settings)
    limit = body_limit(settings)  # the SDK's own 413 stays behind ours (server/body_limit.py)
    if settings.transport == "sse":
        app = server.sse_app(transport_security=security, host=settings.host, max_request_body_size=limit + 1)
    else:
        app = server.streamable_http_app(
            stateless_http=settings.stateless_http, transport_security=security, host=settings.host,
            max_request_body_size=limit + 1,
        )
    app.add_middleware(JsonRpcBodyLimit, limit=limit)
    app.add_route("/healthz", _liveness, methods=["GET"])  # the container HEALTHCHECK probes it
    if server.metrics is not None:  # /metrics and /readyz, no auth, no data (server/metrics.py)
        from sqlgate.server.metrics import mount_probes

        mount_probes(app, server.metrics)
    return app


async def _liveness(_request: Any) -> Any:
    """HTTP liveness: 200 while the listener serves requests. No token needed, nothing
    revealed; the databases' health is ``sqlgate health`` / the health_check tool."""
    from starlette.responses import JSONResponse

    return JSONResponse({"status": "ok"})


def run_stdio(server: Any, settings: Settings) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        if server.metrics is not None and settings.metrics_port is not None:
            from sqlgate.server.metrics import serve_probes

            await serve_probes(server.metrics, settings.host, settings.metrics_port)
        # server/stdio.py: lean asyncio pipes; a client that stopped reading delays the exit
        # by at most the shutdown timeout (5 s at most)
        flush_s = min(5.0, settings.shutdown_timeout_s)
        serving = asyncio.ensure_future(run_stdio_session(server, flush_s))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if serving.done():  # stdin closed: the normal end of a stdio session
            serving.result()
            return
        log.info("signal received; shutting down")
        serving.cancel()  # the lifespan's clean-up is shielded (server/app.py)
        # The serving task itself may never finish (its stdin reader is a blocked thread):
        # wait for the lifespan's clean-up instead.
        stopped = asyncio.ensure_future(server.stopped.wait())
        await asyncio.wait(
            {serving, stopped}, timeout=settings.shutdown_timeout_s + 15, return_when=asyncio.FIRST_COMPLETED
        )
        # Exit here: asyncio.run would otherwise wait for the SDK's stdin reader thread,
        # which stays blocked in readline() until the host closes the pipe.
        _hard_exit(0)

    # uvloop where it is installed (Linux, macOS) and stdin/stdout are pipes, as MCP hosts
    # give them: about a tenth less CPU per call. A terminal gets asyncio's loop: uvloop
    # does not read a TTY through a pipe transport.
    factory = event_loop_factory() if all(_is_pipe(fd) for fd in (0, 1)) else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve())


def _freeze_startup_objects() -> None:
    """Move what start-up made (modules, schemas, the server) out of the garbage collector's
    reach: a result of many rows allocates enough objects to trigger full collections, and
    those no longer walk the whole start-up heap (1,000-row PostgreSQL result: 9.7 -> 7.4 ms
    of server CPU, bench/stdio_load.py). No collection first: it would cost ~90 ms of the
    cold start to free the little garbage imports leave."""
    gc.freeze()


def _is_pipe(fd: int) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode) or stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop factory where uvloop is installed, else None (asyncio's own)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _hard_exit(code: int) -> None:
    """Exit now: the SDK's stdin reader thread stays blocked in readline() otherwise."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def run(settings: Settings) -> None:
    if settings.transport == "stdio":
        server = build_server(settings)
        _freeze_startup_objects()
        run_stdio(server, settings)
        return
    import uvicorn

    from sqlgate.server.slow_clients import request_deadline_protocol

    authenticated = check_exposure(settings)
    server = build_server(settings)
    app = serve_sessions(server, http_app(server, settings))  # one runtime; session ends (server/sessions.py)
    if settings.worker_id:  # session ids a balancer routes back to this worker (server/fleet.py)
        from sqlgate.server.fleet import WorkerSessionIds

        app = WorkerSessionIds(app, settings.worker_id)
    log.info(
        "listening", transport=settings.transport, host=settings.host, port=settings.port,
        auth="bearer" if authenticated else "none", stateless=settings.stateless_http,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # No logging config of uvicorn's own: its loggers (uvicorn.error, uvicorn.access)
        # propagate to the root handler sqlgate.logging set up, so they come out through
        # structlog, as JSON with --log-format json, on stderr.
        log_config=None,
        timeout_graceful_shutdown=max(1, math.ceil(settings.shutdown_timeout_s)),
        server_header=False,
        http=request_deadline_protocol(settings.request_read_timeout_s),  # slow clients (slow_clients.py)
    )
    # uvicorn handles SIGTERM (graceful, bounded), then re-raises it to the handler that was
    # there before: make that one a no-op so a clean stop exits 0 (Docker, systemd).
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    _freeze_startup_objects()
    try:
        uvicorn.Server(config).run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    log.info("stopped")
