"""HTTP sessions and the process's runtime: one runtime for the app's life, sessions end cleanly.

``serve_sessions`` wraps the SDK's Starlette app (SSE or Streamable HTTP):

* its lifespan holds the process's one runtime (``server/runtime.py``) from start-up to
  shutdown, so SSE sessions, whose MCP lifespan the SDK enters per connection, all get
  the same engines, audit writer and transaction registry and never reopen them;
* the end of a session rolls back the interactive transactions it began, at once: an SSE
  stream that closes (client gone, network cut), a Streamable HTTP session ended with
  ``DELETE``. Sessions are named as ``tools/transactions.owner_of`` names them, from the
  same request facts (``Mcp-Session-Id``; the SSE endpoint's ``session_id``);
* a handshake-era session (protocol <= 2025-11-25, SSE or Streamable HTTP) serves requests
  only once the client finished initializing (``notifications/initialized``). On HTTP the
  notification and the next request are separate POSTs that may arrive in either order,
  so a request waits for it up to ``INIT_WAIT_S``, then is refused (-32600).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_REQUEST
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from sqlgate.db.interactive import session_key
from sqlgate.logging import get_logger
from sqlgate.server.runtime import RuntimeHolder

log = get_logger("sqlgate.server")

# The SSE transport's first event tells the client where to post: ".../messages/?session_id=<hex>"
_SSE_SESSION = re.compile(rb"session_id=([0-9a-fA-F]{32})")

Scope = dict[str, Any]
INIT_WAIT_S = 2.0  # how long a request waits for the client's notifications/initialized
_NOT_GATED = frozenset({"initialize", "ping"})


def request_session(request: Any) -> str | None:
    """The session an HTTP request belongs to (None: stdio, stateless HTTP, or opening one)."""
    if request is None:
        return None
    headers = getattr(request, "headers", None) or {}
    query = getattr(request, "query_params", None) or {}
    return session_key(headers.get("mcp-session-id"), query.get("session_id"))


class InitializedGate:
    """MCP server middleware: no request before the client's ``notifications/initialized``."""

    def __init__(self, wait_s: float = INIT_WAIT_S) -> None:
        self.wait_s = wait_s
        self._initialized: dict[str, anyio.Event] = {}

    def _event(self, session: str) -> anyio.Event:
        event = self._initialized.get(session)
        if event is None:
            event = self._initialized[session] = anyio.Event()
        return event

    def forget(self, session: str) -> None:
        self._initialized.pop(session, None)

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:  # no handshake in 2026-07-28
            return await call_next(ctx)
        session = request_session(ctx.request)
        if session is None:
            return await call_next(ctx)
        if ctx.method == "notifications/initialized":
            result = await call_next(ctx)
            self._event(session).set()
            return result
        if ctx.request_id is None or ctx.method in _NOT_GATED:
            return await call_next(ctx)
        event = self._event(session)
        if not event.is_set():
            with anyio.move_on_after(self.wait_s):
                await event.wait()
            if not event.is_set():
                log.info("request refused: the session is not initialized", method=ctx.method, session=session)
                raise MCPError(
                    code=INVALID_REQUEST,
                    message="Invalid Request: the session is not initialized; send initialize, then "
                    "notifications/initialized, before other requests",
                )
        return await call_next(ctx)


def serve_sessions(server: Any, app: Any) -> Any:
    """``app`` with the runtime held for its whole life and session ends handled."""
    holder: RuntimeHolder = server.runtime_holder
    inner_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(starlette_app: Any) -> AsyncIterator[Any]:
        async with holder.use(), inner_lifespan(starlette_app) as state:
            yield state

    app.router.lifespan_context = lifespan
    gate = InitializedGate()
    server.middleware.append(gate)
    return SessionEnds(app, holder, gate)


class SessionEnds:
    """ASGI middleware: roll back a session's transactions when the session ends."""

    def __init__(self, app: Any, holder: RuntimeHolder, gate: InitializedGate | None = None) -> None:
        self.app = app
        self.holder = holder
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "POST":
            await self._post(scope, receive, send)
            return
        if scope["method"] not in ("GET", "DELETE"):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "DELETE":
            await self._delete(scope, receive, send)
            return
        found: list[str] = []

        async def watch(message: dict[str, Any]) -> None:
            if not found and message["type"] == "http.response.body":
                match = _SSE_SESSION.search(message.get("body", b""))
                if match:
                    found.append(match.group(1).decode().lower())
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if found:  # an SSE stream: it is over (closed by the client, cut, or shut down)
                await self._end(session_key(None, found[0]))

    async def _post(self, scope: Scope, receive: Any, send: Any) -> None:
        """A call cut off at shutdown (uvicorn cancels what outlives ``shutdown_timeout_s``)
        gets a JSON-RPC error for its id, not an HTTP 500. Its statement was already
        cancelled in the database by the execution boundary (db/boundary.py)."""
        chunks: list[bytes] = []
        started = False

        async def keep() -> Any:
            message = await receive()
            if message.get("type") == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def watch(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, keep, watch)
        except anyio.get_cancelled_exc_class():
            if started:
                raise
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await send_shutdown_error(send, b"".join(chunks))
            log.info("a call was cut off at shutdown; answered with a JSON-RPC error")

    async def _delete(self, scope: Scope, receive: Any, send: Any) -> None:
        session_id = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"mcp-session-id"), None)
        status: list[int] = []

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        if session_id and status and status[0] < 400:  # the SDK ended the session (a 404 ended nothing)
            await self._end(session_key(session_id, None))

    async def _end(self, session: str | None) -> None:
        if session is not None and self.gate is not None:
            self.gate.forget(session)
        runtime = self.holder.runtime
        if session is None or runtime is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                await runtime.transactions.end_session(session)
            except Exception as exc:  # noqa: BLE001 - never fail the response over a clean-up
                log.warning("rolling back a session's transactions failed", session=session, error=str(exc))


SHUTDOWN_ERROR = -32000  # JSON-RPC implementation-defined server error


async def send_shutdown_error(send: Any, body: bytes) -> None:
    """Answer the request in ``body`` with a JSON-RPC error saying the server is stopping."""
    import json

    request_id = None
    try:
        decoded = json.loads(body)
        if isinstance(decoded, dict) and isinstance(decoded.get("id"), str | int):
            request_id = decoded["id"]
    except ValueError:
        pass
    payload = json.dumps({
        "jsonrpc": "2.0", "id": request_id,
        "error": {"code": SHUTDOWN_ERROR, "message": "the server is shutting down: the call was cut off "
                  "and its statement cancelled in the database; nothing it did was committed unless it "
                  "had already finished. Retry on a new connection."},
    }).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
