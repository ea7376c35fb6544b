"""The result of a successful ``safety.check``: pure data, easy to test and to print."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from sqlgate.safety import profiles


@dataclass(frozen=True)
class Verdict:
    """An allowed SQL text, as sqlgate understood it.

    ``expressions`` are the parsed statements with the row cap applied; they are
    shared through the verdict cache, so consumers must ``copy()`` before changing
    them. ``sql`` is the canonical text that is sent (placeholders still named).
    """

    dialect: str
    """sqlglot's dialect name, for rendering the expressions (``postgres``); output says
    the canonical name (``to_dict``)."""
    statement_kinds: tuple[str, ...]
    tables: tuple[str, ...]
    writes: bool
    sql: str
    parameters: tuple[str, ...]
    expressions: tuple[exp.Expr, ...] = field(repr=False, compare=False)
    row_capped: bool = False
    warnings: tuple[str, ...] = ()
    bound: tuple[tuple[str, Any], ...] = ()
    """Integer literals the shape cache (``safety.shapes``) hoisted out of ``expressions``
    as named placeholders: the execution layer binds them with the caller's parameters."""

    @property
    def statement_kind(self) -> str:
        return self.statement_kinds[0] if len(self.statement_kinds) == 1 else "multi"

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": True,
            "dialect": profiles.get(self.dialect).name,
            "statement_kind": self.statement_kind,
            "statement_kinds": list(self.statement_kinds),
            "tables": list(self.tables),
            "writes": self.writes,
            "sql": self.sql,
            "parameters": list(self.parameters),
            "row_capped": self.row_capped,
            "warnings": list(self.warnings),
        }
