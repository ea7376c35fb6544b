"""EXPLAIN: allowed for statements that would themselves be allowed, never with ANALYZE.

PostgreSQL and SQLite EXPLAIN reach sqlglot as an opaque ``Command``; the option list is
checked against a closed set of words here and the statement after it is parsed and
checked like any other. MySQL's EXPLAIN is a typed ``Describe`` node.
"""

from __future__ import annotations

import re

from sqlglot import exp

from sqlgate.errors import PolicyViolation
from sqlgate.safety.profiles import ExplainSyntax, SafetyProfile

# PostgreSQL EXPLAIN options that only change how the plan is shown. Not SETTINGS: it
# prints the server settings changed from their defaults (current_setting by other means).
_SAFE_OPTIONS = {
    "VERBOSE", "COSTS", "SUMMARY", "FORMAT", "TEXT", "JSON", "XML", "YAML",
    "GENERIC_PLAN", "MEMORY", "TRUE", "FALSE", "ON", "OFF", "0", "1",
}
_PAREN_OPTIONS = re.compile(r"^\(([^()]*)\)\s*", re.DOTALL)
_WORD = re.compile(r"^([A-Za-z_]+)\s+", re.DOTALL)


def _deny_analyze() -> PolicyViolation:
    return PolicyViolation(
        "EXPLAIN ANALYZE executes the statement",
        "use plain EXPLAIN, or the query_optimization tool with analyze=true for reads",
        code="STATEMENT_NOT_ALLOWED",
    )


def split_explain(command: exp.Command, profile: SafetyProfile) -> tuple[str, str]:
    """Split ``EXPLAIN <options> <statement>`` into (options text, statement text)."""
    rest = command.expression.name if isinstance(command.expression, exp.Literal) else ""
    options: list[str] = []
    if profile.explain_syntax is ExplainSyntax.QUERY_PLAN:
        match = re.match(r"^QUERY\s+PLAN\s+", rest, re.IGNORECASE)
        if match:
            options.append("QUERY PLAN")
            rest = rest[match.end():]
        return " ".join(options), rest
    match = _PAREN_OPTIONS.match(rest)
    if match:
        words = re.split(r"[\s,]+", match.group(1).strip().upper())
        for item in match.group(1).upper().split(","):
            # ANALYZE false / off / 0 is a plain EXPLAIN: it does not execute. Any
            # whitespace separates the name from its value (`ANALYZE<tab>true`).
            name, _, value = " ".join(item.split()).partition(" ")
            if name in ("ANALYZE", "ANALYSE") and value.strip() not in ("FALSE", "OFF", "0"):
                raise _deny_analyze()
        words = [w for w in words if w not in ("ANALYZE", "ANALYSE")]
        unknown = [w for w in words if w and w not in _SAFE_OPTIONS]
        if unknown:
            raise PolicyViolation(
                f"EXPLAIN option {unknown[0]} is not allowed",
                "use EXPLAIN (FORMAT JSON) or plain EXPLAIN",
                code="STATEMENT_NOT_ALLOWED",
            )
        options.append(f"({match.group(1).strip()})")
        rest = rest[match.end():]
    while True:
        match = _WORD.match(rest)
        if not match or match.group(1).upper() not in {"VERBOSE", "ANALYZE", "ANALYSE"}:
            break
        if match.group(1).upper() != "VERBOSE":
            raise _deny_analyze()
        options.append("VERBOSE")
        rest = rest[match.end():]
    return " ".join(options), rest


def check_describe(statement: exp.Describe) -> None:
    if not isinstance(statement.this, exp.Query | exp.DML):
        # MySQL `DESC t` / `EXPLAIN t` / `DESCRIBE t` describe a table, not a plan: its
        # columns' defaults too, a denied column's among them (describe_schema shows what
        # the policy lets an agent see).
        raise PolicyViolation(
            "DESCRIBE of a table is not allowed",
            "use the describe_schema tool to see tables and columns; EXPLAIN takes a statement",
            code="STATEMENT_NOT_ALLOWED",
        )
    style = statement.args.get("style")
    if style is not None and str(style).upper() not in {"EXTENDED", "PARTITIONS"}:
        raise _deny_analyze()
