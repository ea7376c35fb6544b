"""The result of a successful ``safety.check``: pure data, easy to test and to print."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from sqlgate.errors import InvalidArgument
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
    positional: bool = False
    """The placeholders are positional (``$1``, ``?``): ``parameters`` holds their numbers
    (``"1"``, ``"2"``) and the caller passes the values as an array (``values``)."""
    bound: tuple[tuple[str, Any], ...] = ()
    """Integer literals the shape cache (``safety.shapes``) hoisted out of ``expressions``
    as named placeholders: the execution layer binds them with the caller's parameters."""

    def values(self, given: object) -> dict[str, Any]:
        """The caller's ``parameters`` as placeholder name -> value.

        ``:name`` placeholders take an object; positional ones (``$1``, ``?``) an array
        with one value per placeholder number. A mismatch is ``INVALID_ARGUMENT`` with the fix.
        """
        if given is None:
            if self.positional and self.parameters:
                raise InvalidArgument(
                    "the query has positional placeholders but no `parameters` were passed",
                    "pass the values as an array in placeholder order, e.g. \"parameters\": [42]",
                )
            return {}
        if self.positional:
            count = max((int(p) for p in self.parameters), default=0)
            if isinstance(given, dict):
                raise InvalidArgument(
                    "the query uses positional placeholders, so `parameters` must be an array",
                    f"pass the {count} value(s) in placeholder order, e.g. \"parameters\": [42]",
                )
            if not isinstance(given, list | tuple):
                raise InvalidArgument("`parameters` must be an array here", "pass [value, ...] in placeholder order")
            if len(given) != count:
                raise InvalidArgument(
                    f"the query has {count} positional placeholder(s) but {len(given)} value(s) were passed",
                    f"pass exactly {count} value(s) in `parameters`, in placeholder order",
                )
            return {p: given[int(p) - 1] for p in self.parameters}
        if isinstance(given, list | tuple):
            if not given:
                return {}
            named = ", ".join(f":{p}" for p in self.parameters)
            raise InvalidArgument(
                "`parameters` is an array but the query has "
                + (f"named placeholders ({named})" if named else "no placeholders"),
                ("pass an object: {" + ", ".join(f'"{p}": ...' for p in self.parameters) + "}") if named
                else "remove `parameters`, or write positional placeholders ($1 on PostgreSQL, ? on MySQL/SQLite)",
            )
        if not isinstance(given, dict):
            raise InvalidArgument("`parameters` must be an object", 'pass {"name": value} pairs in `parameters`')
        return dict(given)

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
