"""Structured logging with structlog, to stderr only (stdout is the stdio transport).

Passwords in URLs are masked in every event, whatever field they appear in.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)(?P<pw>[^@\s/]+)@")


def mask_secrets(text: str) -> str:
    """Replace the password of every URL in ``text`` with ``***``."""
    return _URL_PASSWORD.sub(r"\g<head>***@", text)


def _mask_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str) and "://" in value:
            event[key] = mask_secrets(value)
    return event


class _NoQueryString(logging.Filter):
    """uvicorn's access lines without the query string: no sqlgate endpoint takes a secret
    there, but a client may put one there anyway (``?access_token=...``, refused with 401,
    still logged), and an SSE ``session_id`` is a capability. The path stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?(query omitted)", *args[3:])
        return True


_ACCESS_FILTER = _NoQueryString()


def configure(level: str = "INFO", fmt: str = "console") -> None:
    """Send structlog and stdlib logging to stderr in one format."""
    numeric = logging.getLevelName(level.upper())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_event,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # Chatty libraries: keep their warnings, drop their per-request info lines.
    for name in ("mcp", "httpx", "httpx2", "uvicorn.access", "sse_starlette", "aiosqlite", "alembic"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    access = logging.getLogger("uvicorn.access")
    if _ACCESS_FILTER not in access.filters:
        access.addFilter(_ACCESS_FILTER)


def get_logger(name: str = "sqlgate") -> Any:
    return structlog.get_logger(name)


if not structlog.is_configured():
    # structlog's default writes to stdout, which is the stdio transport: until the
    # server configures logging properly, send everything to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
