"""An HTTP request body over the limit gets a JSON-RPC error the agent can read.

The MCP SDK answers an oversized body with a bare ``413 Request body too large``, which
an MCP client reports as a transport failure. This middleware, in front of it, answers
instead with a JSON-RPC error for the request's id (found in the first bytes of the
body) saying the limit and what to do. The limit agrees with bulk_insert's documented
``bulk_max_payload_bytes`` plus ``ENVELOPE_BYTES`` for the rest of the request.
"""

from __future__ import annotations

import json
import re
from typing import Any

ENVELOPE_BYTES = 1 << 20
_ID = re.compile(rb'"id"\s*:\s*("(?:[^"\\]|\\.){0,200}"|-?\d{1,20})')


def body_limit(settings: Any) -> int:
    """The HTTP body limit: bulk_insert's largest payload plus room for the envelope."""
    return int(settings.bulk_max_payload_bytes) + ENVELOPE_BYTES


class JsonRpcBodyLimit:
    """ASGI middleware: POST bodies longer than ``limit`` bytes end in a JSON-RPC error."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            first = await receive()
            await self._refuse(send, int(declared), first.get("body", b"")[:4096])
            return
        messages: list[dict[str, Any]] = []
        size = 0
        head = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body = message.get("body", b"")
            if len(head) < 4096:
                head += body[: 4096 - len(head)]
            size += len(body)
            if size > self.limit:
                await self._refuse(send, size, head)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Any:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any, size: int, head: bytes) -> None:
        found = _ID.search(head)
        request_id = json.loads(found.group(1)) if found else None
        error = {
            "code": -32600,
            "message": (
                f"request too large: over {size:,} bytes; the limit is {self.limit:,} bytes "
                f"(bulk_max_payload_bytes + {ENVELOPE_BYTES:,} for the rest of the request)"
            ),
            "data": {"code": "INVALID_ARGUMENT", "limit_bytes": self.limit,
                     "hint": "send fewer records per bulk_insert call, or a shorter query"},
        }
        payload = json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}).encode()
        # With the request's id, a 200 JSON-RPC error reaches the waiting call in any MCP
        # client; without one, 413 with the same body.
        status = 200 if request_id is not None else 413
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close"),
        ]})
        await send({"type": "http.response.body", "body": payload})
