"""The typed error tree. Every failure an agent can see is a ``SqlgateError``.

Each error has a stable ``code`` (tests assert on it), a ``message`` saying what went
wrong and a ``hint`` saying how to fix the call. Errors leave sqlgate at one place, the
tool boundary in ``server.app``, as an MCP tool result with ``isError: true``.
"""

from __future__ import annotations

from typing import Any


class SqlgateError(Exception):
    """Base of every error sqlgate reports to a caller."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, hint: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "hint": self.hint}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidArgument(SqlgateError):
    """The call's arguments are wrong (type, range, unknown database, ...)."""

    code = "INVALID_ARGUMENT"


class PolicyViolation(SqlgateError):
    """The SQL was denied by the safety policy. ``code`` names the rule."""

    code = "STATEMENT_NOT_ALLOWED"


class DatabaseError(SqlgateError):
    """The database refused or failed the statement."""

    code = "DB_ERROR"


class QueryTimeout(DatabaseError):
    code = "TIMEOUT"


class PoolExhausted(DatabaseError):
    code = "POOL_EXHAUSTED"


class DatabaseUnavailable(DatabaseError):
    code = "DB_UNAVAILABLE"


class ConfigError(SqlgateError):
    """Bad configuration, found at start-up."""

    code = "CONFIG_ERROR"


class OperationFailed(SqlgateError):
    """A failure inside a multi-step write (a batch, an operation), with where it happened.

    Keeps the cause's code and hint; ``details`` (e.g. ``failed_operation``,
    ``committed: false``) are added to the error body the agent receives.
    """

    def __init__(self, cause: SqlgateError, message: str, details: dict[str, Any]) -> None:
        super().__init__(message, cause.hint, code=cause.code)
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), **self.details}
