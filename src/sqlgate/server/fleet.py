"""Session ids a balancer can route: ``<worker_id>.<id>`` on the wire, the SDK's own id inside.

A handshake-era Streamable HTTP session lives in the memory of the worker that answered its
``initialize``; the balancer chose that worker before any session id existed, so hashing the
id afterwards cannot find it again. With ``worker_id`` set, this ASGI middleware (outermost)
prefixes the ``Mcp-Session-Id`` the SDK hands out with ``<worker_id>.`` and strips the prefix
from requests, so the SDK, the session-end handling (server/sessions.py) and transaction
ownership all see the SDK's id while nginx maps the prefix to its worker (deploy/nginx).
A request carrying another worker's prefix keeps it, and the SDK answers 404 (unknown session).
"""

from __future__ import annotations

from typing import Any

HEADER = b"mcp-session-id"


class WorkerSessionIds:
    def __init__(self, app: Any, worker_id: str) -> None:
        self.app = app
        self.prefix = worker_id.encode() + b"."

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        prefix = self.prefix
        headers = [
            (name, value[len(prefix):] if name == HEADER and value.startswith(prefix) else value)
            for name, value in scope["headers"]
        ]

        async def prefixed(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [
                    (name, prefix + value if name.lower() == HEADER else value)
                    for name, value in message.get("headers", [])
                ]
            await send(message)

        await self.app({**scope, "headers": headers}, receive, prefixed)
