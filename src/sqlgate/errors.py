"""The typed error tree. Every failure an agent can see is a ``SqlgateError``.

Each error has a stable ``code`` (tests assert on it), a ``message`` saying what went
wrong, a ``hint`` saying how to fix the call, and ``retryable``: whether the same call
may succeed if simply made again (docs/error-codes.md has the table). Errors leave sqlgate at one place, the
tool boundary in ``server.app``, as an MCP tool result with ``isError: true``.
"""

from __future__ import annotations

from typing import Any


class SqlgateError(Exception):
    """Base of every error sqlgate reports to a caller."""

    code = "INTERNAL_ERROR"
    retryable = False

    def __init__(
        self, message: str, hint: str = "", *, code: str | None = None, retryable: bool | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": _bounded(self.message), "hint": _bounded(self.hint),
                "retryable": self.retryable}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# An error's message and hint each stay under this many characters (docs/limits.md):
# a list an agent sent (100k parameter names) must not come back as a megabyte.
MAX_ERROR_TEXT = 2_000


def _bounded(text: str) -> str:
    if len(text) <= MAX_ERROR_TEXT:
        return text
    return f"{text[:MAX_ERROR_TEXT - 40]}… ({len(text) - MAX_ERROR_TEXT + 40:,} more characters)"


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
    """The call ran past its deadline; the statement was cancelled in the database."""

    code = "TIMEOUT"


class PoolExhausted(DatabaseError):
    """Every pooled connection was busy for the whole wait."""

    code = "POOL_EXHAUSTED"
    retryable = True


class DatabaseUnavailable(DatabaseError):
    """The connection failed or was lost (network, server shutting down, backend killed)."""

    code = "DB_UNAVAILABLE"
    retryable = True


class DatabaseBusy(DatabaseError):
    """A lock could not be had in time (lock wait timeout, SQLite "database is locked")."""

    code = "DB_BUSY"
    retryable = True


class TransactionConflict(DatabaseError):
    """Deadlock or serialization failure: the database rolled the transaction back."""

    code = "DB_CONFLICT"
    retryable = True


class ConstraintViolation(DatabaseError):
    """The data broke a constraint (unique, foreign key, not null, check)."""

    code = "CONSTRAINT_VIOLATION"


class ConfigError(SqlgateError):
    """Bad configuration, found at start-up."""

    code = "CONFIG_ERROR"


class OperationFailed(SqlgateError):
    """A failure inside a multi-step write (a batch, an operation), with where it happened.

    Keeps the cause's code and hint; ``details`` (e.g. ``failed_operation``,
    ``committed: false``) are added to the error body the agent receives.
    """

    def __init__(self, cause: SqlgateError, message: str, details: dict[str, Any]) -> None:
        super().__init__(message, cause.hint, code=cause.code, retryable=cause.retryable)
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), **self.details}
