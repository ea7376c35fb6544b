"""The safety policy of one configured database.

``Policy`` is plain, frozen, hashable data: ``settings`` holds one per database, and
``safety.check`` takes it as an argument (and as part of its cache key).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

COLUMNS_SEP = "\x1f"  # between a table and its columns in Policy.table_columns


class Mode(StrEnum):
    READ_ONLY = "read_only"
    READ_WRITE = "read_write"


def _split(value: object) -> object:
    """Accept ``"a,b"`` as well as lists (env vars and CLI flags give strings)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list):
        return tuple(value)
    return value


class Policy(BaseModel):
    """What SQL a database accepts through sqlgate's tools."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = Mode.READ_ONLY
    # None: not configured. The runtime replaces it with the user tables reflected at
    # start-up; ``check`` treats a remaining None as an empty whitelist (fail closed).
    allowed_tables: tuple[str, ...] | None = None
    denied_columns: tuple[str, ...] = ()
    allowed_functions: tuple[str, ...] = ()
    denied_functions: tuple[str, ...] = ()
    max_rows: int = Field(default=1000, ge=1, le=1_000_000)
    statement_timeout_ms: int = Field(default=30_000, ge=1, le=24 * 3600 * 1000)
    allow_multi_statement: bool = False
    allow_unbounded_writes: bool = False
    max_query_length: int = Field(default=20_000, ge=1)  # docs/limits.md
    # The schema a bare table name resolves to (PostgreSQL ``public``, the MySQL
    # database name, SQLite ``main``). Filled in by the runtime from the connection.
    default_schema: str | None = None
    # The reflected columns of the tables that have denied columns, in table order, one
    # string per table: the table and its columns joined by COLUMNS_SEP (flat strings
    # hash fast: the policy is part of the verdict cache key). A mapping
    # ``{"customers": ["id", "name", "ssn"]}`` is accepted too. Filled in by the runtime
    # at start-up; safety.columns resolves every column reference against it.
    table_columns: tuple[str, ...] = ()
    # MySQL/MariaDB lower_case_table_names=0 (read at connect): table and database names
    # compare exactly (``CUSTOMERS`` is not ``customers``). Filled in by the runtime.
    exact_table_names: bool = False

    @field_validator(
        "allowed_tables", "denied_columns", "allowed_functions", "denied_functions", mode="before"
    )
    @classmethod
    def _split_lists(cls, value: object) -> object:
        return _split(value)

    @field_validator("table_columns", mode="before")
    @classmethod
    def _table_columns(cls, value: object) -> object:
        pairs: list[Any] | tuple[Any, ...]
        if isinstance(value, dict):
            pairs = list(value.items())
        elif isinstance(value, list | tuple):
            pairs = value
        else:
            return value
        return tuple(
            entry if isinstance(entry, str) else COLUMNS_SEP.join((str(entry[0]), *map(str, entry[1])))
            for entry in pairs
        )

    @property
    def read_only(self) -> bool:
        # Fail closed: anything but exactly read_write (even a plain string set through
        # model_copy, which skips validation) is read-only.
        return self.mode != Mode.READ_WRITE
