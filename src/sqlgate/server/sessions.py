"""HTTP sessions and the process's runtime: one runtime for the app's life, sessions end cleanly.

``serve_sessions`` wraps the SDK's Starlette app (SSE or Streamable HTTP):

* its lifespan holds the process's one runtime (``server/runtime.py``) from start-up to
  shutdown, so SSE sessions, whose MCP lifespan the SDK enters per connection, all get
  the same engines, audit writer and transaction registry and never reopen them;
* the end of a session rolls back the interactive transactions it began, at once: an SSE
  stream that closes (client gone, network cut), a Streamable HTTP session ended with
  ``DELETE``. Sessions are named as ``tools/transactions.owner_of`` names them, from the
  same request facts (``Mcp-Session-Id``; the SSE endpoint's ``session_id``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from sqlgate.db.interactive import session_key
from sqlgate.logging import get_logger
from sqlgate.server.runtime import RuntimeHolder

log = get_logger("sqlgate.server")

# The SSE transport's first event tells the client where to post: ".../messages/?session_id=<hex>"
_SSE_SESSION = re.compile(rb"session_id=([0-9a-fA-F]{32})")

Scope = dict[str, Any]


def serve_sessions(server: Any, app: Any) -> Any:
    """``app`` with the runtime held for its whole life and session ends handled."""
    holder: RuntimeHolder = server.runtime_holder
    inner_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(starlette_app: Any) -> AsyncIterator[Any]:
        async with holder.use(), inner_lifespan(starlette_app) as state:
            yield state

    app.router.lifespan_context = lifespan
    return SessionEnds(app, holder)


class SessionEnds:
    """ASGI middleware: roll back a session's transactions when the session ends."""

    def __init__(self, app: Any, holder: RuntimeHolder) -> None:
        self.app = app
        self.holder = holder

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "DELETE"):
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
        runtime = self.holder.runtime
        if session is None or runtime is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                await runtime.transactions.end_session(session)
            except Exception as exc:  # noqa: BLE001 - never fail the response over a clean-up
                log.warning("rolling back a session's transactions failed", session=session, error=str(exc))
