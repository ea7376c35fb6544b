"""The record of the tool call in progress: filled in by tools, read by the boundary and the audit log.

It sits below everything that uses it (``tools``, ``audit``, ``server``) and imports
nothing of sqlgate, so none of them needs to import another to share it.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CallRecord:
    """Facts about the current tool call, filled in by the tool, logged by the boundary."""

    tool: str
    request_id: str
    database: str | None = None
    statement_kind: str | None = None
    tables: list[str] = field(default_factory=list)
    sql: str | None = None
    verdict: str | None = None  # "allowed" | "denied"
    rows: int | None = None
    rows_affected: int | None = None
    parameters: dict[str, Any] | None = None  # as sent; the audit log redacts or hashes them
    client: str | None = None  # the MCP client's name/version when it says


current_call: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "sqlgate_call", default=None
)


def record(**facts: Any) -> None:
    """Note ``facts`` on the current call's record (no-op outside a tool call)."""
    call = current_call.get()
    if call is not None:
        for key, value in facts.items():
            setattr(call, key, value)
