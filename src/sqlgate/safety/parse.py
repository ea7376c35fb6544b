"""Turning text into sqlglot statements, with the guards that must run before the parser.

The parser is recursive; the compiled (sqlglotc) build can take the whole process down on
very deep input instead of raising ``RecursionError``. So size and nesting are measured
first — on the raw text, then on the token stream (the tokenizer is iterative) — and
anything the parser rejects is a denial (fail closed).

Where sqlglot's reading of the text and the server's can differ, the text is denied
before parsing (``guard_differentials``): the statement sent is re-rendered from the
checked tree, which neutralises most parser-differential tricks, but a construct the
two sides read differently is refused rather than trusted.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel
from sqlglot.tokenizer_core import Token, TokenType

from sqlgate.errors import PolicyViolation

# sqlglot's name for each dialect sqlgate serves.
DIALECTS = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}

# Nesting the parser is asked to handle: parentheses, CASE and runs of prefix operators
# (NOT NOT ..., - - ...) each cost recursion. 64 leaves a wide margin below the depth at
# which the parser runs out of stack (several hundred), even deep inside the server.
MAX_NESTING = 64
MAX_TOKENS = 20_000
MAX_SET_OPERATIONS = 256  # UNION / INTERSECT / EXCEPT branches in one statement text
MAX_CASTS = 256  # chained ``::type`` casts nest like prefix operators

_OPEN = {TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.CASE}
_CLOSE = {TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.END}
_PREFIX = {TokenType.NOT, TokenType.DASH, TokenType.PLUS, TokenType.TILDE, TokenType.RLIKE}
_SET_OPS = {TokenType.UNION, TokenType.INTERSECT, TokenType.EXCEPT}

# MySQL/MariaDB execute the text inside /*! ... */ and /*M! ... */ (optionally versioned);
# sqlglot reads it as a comment and drops it.
_MYSQL_EXECUTABLE_COMMENT = re.compile(r"/\*M?!")
_MYSQL_FILE_OUTPUT = re.compile(r"\bINTO\s+(OUTFILE|DUMPFILE)\b", re.IGNORECASE)
# PostgreSQL U&'...' / U&"..." with UESCAPE, and E'...' strings with backslash escapes:
# decoding rules sqlglot does not mirror exactly.
_PG_UNICODE_ESCAPE = re.compile(r"(?<![\w$])U&['\"]", re.IGNORECASE)
_PG_ESCAPE_STRING = re.compile(r"(?<![\w$])E'(?:[^'\\]|'')*\\", re.IGNORECASE)


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
    """Deepest parenthesis nesting, ignoring quoted text. Linear, no recursion.

    A cheap first pass on the raw text; ``guard_tokens`` measures again on tokens.
    """
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


def _too_complex(message: str, hint: str = "flatten the query (use CTEs or joins instead of deep nesting)") -> PolicyViolation:
    return PolicyViolation(message, hint, code="QUERY_TOO_COMPLEX")


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
    if sql.count("(") > MAX_NESTING and nesting_depth(sql) > MAX_NESTING:
        raise _too_complex(f"the query nests parentheses deeper than {MAX_NESTING} levels")


def guard_differentials(sql: str, dialect: str) -> None:
    """Deny text that sqlglot and the database server could read differently."""
    if dialect == "mysql":
        if _MYSQL_EXECUTABLE_COMMENT.search(sql):
            raise PolicyViolation(
                "the query contains a MySQL executable comment (/*! ... */), which the server "
                "runs as SQL",
                "remove the /*! ... */ comment; write the SQL plainly",
                code="STATEMENT_NOT_ALLOWED",
            )
        if _MYSQL_FILE_OUTPUT.search(sql):
            raise PolicyViolation(
                "SELECT ... INTO OUTFILE/DUMPFILE writes a file on the database server",
                "select the rows without INTO; sqlgate returns them to you",
                code="STATEMENT_NOT_ALLOWED",
            )
    elif dialect == "postgres":
        if _PG_UNICODE_ESCAPE.search(sql):
            raise PolicyViolation(
                "U&'...' unicode-escape strings and identifiers are not accepted",
                "write the characters directly, or pass the text as a bound parameter",
                code="PARSE_ERROR",
            )
        if _PG_ESCAPE_STRING.search(sql):
            raise PolicyViolation(
                "E'...' strings with backslash escapes are not accepted",
                "write a plain '...' string (double a quote to escape it) or pass the text "
                "as a bound parameter",
                code="PARSE_ERROR",
            )


def guard_tokens(tokens: list[Token]) -> None:
    """Bound what the recursive parser will be asked to do, on the flat token list."""
    if len(tokens) > MAX_TOKENS:
        raise _too_complex(f"the query has {len(tokens)} tokens; the limit is {MAX_TOKENS}", "send a smaller query")
    depth = deepest = run = set_ops = casts = 0
    for token in tokens:
        kind = token.token_type
        if kind in _OPEN:
            depth += 1
        elif kind in _CLOSE:
            depth = max(0, depth - 1)
        elif kind in _SET_OPS:
            set_ops += 1
        elif kind is TokenType.DCOLON:
            casts += 1
        run = run + 1 if kind in _PREFIX else 0
        deepest = max(deepest, depth + run)
    if deepest > MAX_NESTING:
        raise _too_complex(
            f"the query nests expressions (parentheses, CASE, NOT, signs) deeper than {MAX_NESTING} levels"
        )
    if set_ops > MAX_SET_OPERATIONS:
        raise _too_complex(
            f"the query has {set_ops + 1} UNION/INTERSECT/EXCEPT branches; the limit is {MAX_SET_OPERATIONS + 1}",
            "put the values in a table or a VALUES list, or split the query into several calls",
        )
    if casts > MAX_CASTS:
        raise _too_complex(f"the query has more than {MAX_CASTS} :: casts", "cast once")


def guard_pg_backslashes(tokens: list[Token]) -> None:
    """Deny PostgreSQL string literals that contain a backslash.

    sqlgate re-renders every literal as a standard ``'...'`` string (dollar-quoted ones
    too). With ``standard_conforming_strings = on`` (the default since 9.1) a backslash
    there is an ordinary character; on a server running with it ``off`` it escapes the
    next character, so ``'a\\'`` would swallow the closing quote and the rest of the text
    would be read as SQL the validator never saw. sqlgate cannot know the server setting.
    """
    for token in tokens:
        if token.token_type.name.endswith("STRING") and "\\" in token.text:
            raise PolicyViolation(
                "string literals containing a backslash are not accepted on PostgreSQL",
                "pass the text as a bound :name parameter; in a regular expression write "
                "[.] instead of \\.",
                code="PARSE_ERROR",
            )


def parse(sql: str, dialect: str) -> list[exp.Expr]:
    """Parse ``sql`` into statements; any parser complaint is a PARSE_ERROR."""
    try:
        sqlglot_dialect_ = sqlglot.Dialect.get_or_raise(dialect)
        tokens = sqlglot_dialect_.tokenize(sql)
        guard_tokens(tokens)
        if dialect == "postgres":
            guard_pg_backslashes(tokens)
        statements = sqlglot_dialect_.parser(error_level=ErrorLevel.RAISE).parse(tokens, sql)
    except PolicyViolation:
        raise
    except RecursionError:
        raise _too_complex("the query is too deeply nested to analyse") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a denial (fail closed)
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PolicyViolation(
            f"could not parse the query as {dialect} SQL: {first_line}",
            _parse_hint(sql),
            code="PARSE_ERROR",
        ) from None
    found = [s for s in statements if s is not None]
    if not found:
        raise PolicyViolation("the query is empty", "send one SQL statement", code="PARSE_ERROR")
    return found


def _parse_hint(sql: str) -> str:
    if "%(" in sql or "%s" in sql or "?" in sql:
        return "use named placeholders like :customer_id for values (pass them in `parameters`)"
    return "check the syntax; sqlgate only runs SQL it can fully parse"
