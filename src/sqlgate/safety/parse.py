"""Turning text into sqlglot statements, with the guards that must run before the parser.

The parser is recursive; the compiled (sqlglotc) build can take the whole process down on
very deep input instead of raising ``RecursionError``. So size and nesting are measured
on the raw text first, and anything the parser rejects is a denial (fail closed).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from sqlgate.errors import PolicyViolation

# sqlglot's name for each dialect sqlgate serves.
DIALECTS = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}

MAX_NESTING = 64
MAX_TOKENS = 20_000


def sqlglot_dialect(dialect: str) -> str:
    try:
        return DIALECTS[dialect.lower()]
    except KeyError:
        raise PolicyViolation(
            f"unknown SQL dialect {dialect!r}",
            f"use one of: {', '.join(sorted(set(DIALECTS.values())))}",
            code="PARSE_ERROR",
        ) from None


def nesting_depth(sql: str) -> int:
    """Deepest parenthesis nesting, ignoring quoted text. Linear, no recursion."""
    depth = deepest = 0
    quote = ""
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


def guard_size(sql: str, max_length: int) -> None:
    if not sql.strip():
        raise PolicyViolation("the query is empty", "send one SQL statement", code="PARSE_ERROR")
    if len(sql) > max_length:
        raise PolicyViolation(
            f"the query is {len(sql)} characters long; the limit is {max_length}",
            "send a shorter query, or move literal data into bound parameters",
            code="QUERY_TOO_LARGE",
        )
    if "\x00" in sql:
        raise PolicyViolation("the query contains a NUL byte", "remove it", code="PARSE_ERROR")
    if nesting_depth(sql) > MAX_NESTING:
        raise PolicyViolation(
            f"the query nests parentheses deeper than {MAX_NESTING} levels",
            "flatten the query (use CTEs or joins instead of deep nesting)",
            code="QUERY_TOO_COMPLEX",
        )


def parse(sql: str, dialect: str) -> list[exp.Expr]:
    """Parse ``sql`` into statements; any parser complaint is a PARSE_ERROR."""
    try:
        tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(sql)
        if len(tokens) > MAX_TOKENS:
            raise PolicyViolation(
                f"the query has {len(tokens)} tokens; the limit is {MAX_TOKENS}",
                "send a smaller query",
                code="QUERY_TOO_COMPLEX",
            )
        statements = sqlglot.parse(sql, read=dialect, error_level=ErrorLevel.RAISE)
    except PolicyViolation:
        raise
    except RecursionError:
        raise PolicyViolation(
            "the query is too deeply nested to analyse",
            "flatten the query",
            code="QUERY_TOO_COMPLEX",
        ) from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a denial (fail closed)
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PolicyViolation(
            f"could not parse the query as {dialect} SQL: {first_line}",
            "check the syntax; sqlgate only runs SQL it can fully parse",
            code="PARSE_ERROR",
        ) from None
    found = [s for s in statements if s is not None]
    if not found:
        raise PolicyViolation("the query is empty", "send one SQL statement", code="PARSE_ERROR")
    return found
