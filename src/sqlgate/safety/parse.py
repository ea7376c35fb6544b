"""Turning text into sqlglot statements, with the guards that must run before the parser.

The parser is recursive; the compiled (sqlglotc) build can take the whole process down on
very deep input instead of raising ``RecursionError``. So size and nesting are measured
first — on the raw text, then on the token stream (the tokenizer is iterative) — and
anything the parser rejects is a denial (fail closed).

Where sqlglot's reading of the text and the server's can differ, the text is denied
before parsing (``guard_differentials``, with the guards of the dialect's safety
profile): the statement sent is re-rendered from the
checked tree, which neutralises most parser-differential tricks, but a construct the
two sides read differently is refused rather than trusted.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel
from sqlglot.tokenizer_core import Token, TokenType

from sqlgate.errors import PolicyViolation
from sqlgate.safety import arguments, literals, profiles
from sqlgate.safety.profiles import SafetyProfile

# Nesting the parser is asked to handle: parentheses, CASE and runs of prefix operators
# (NOT NOT ..., - - ...) each cost recursion. 64 leaves a wide margin below the depth at
# which the parser runs out of stack (several hundred), even deep inside the server.
MAX_NESTING = 64
# Tokens per query. A check costs ~25 µs per token on the loop (rules, re-rendering;
# docs/limits.md): at the default max_query_length the limit is DEFAULT_TOKENS, which
# keeps any check under ~50 ms; an agent query rarely passes 1,000 tokens. An operator
# who raises max_query_length raises it in proportion, never past
# MAX_TOKENS; texts longer than tools.checking.INLINE_CHARS are then checked in a
# worker process.
DEFAULT_TOKENS = 1_500
DEFAULT_LENGTH = 20_000  # Policy.max_query_length's default
MAX_TOKENS = 10_000


def token_limit(max_query_length: int) -> int:
    """The token limit that goes with a policy's ``max_query_length``."""
    return min(MAX_TOKENS, max(DEFAULT_TOKENS, max_query_length * DEFAULT_TOKENS // DEFAULT_LENGTH))
MAX_SET_OPERATIONS = 256  # UNION / INTERSECT / EXCEPT branches in one statement text
MAX_CASTS = 256  # chained ``::type`` casts nest like prefix operators

_OPEN = {TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.CASE}
_CLOSE = {TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.END}
_PREFIX = {TokenType.NOT, TokenType.DASH, TokenType.PLUS, TokenType.TILDE, TokenType.RLIKE}
_SET_OPS = {TokenType.UNION, TokenType.INTERSECT, TokenType.EXCEPT}

def sqlglot_dialect(dialect: str | SafetyProfile) -> str:
    """sqlglot's name for a dialect (any name the profile registry accepts)."""
    return profiles.get(dialect).sqlglot_dialect


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


def guard_differentials(sql: str, dialect: str | SafetyProfile) -> None:
    """Deny text that sqlglot and the database server could read differently."""
    profiles.get(dialect).guard_text(sql)


def guard_tokens(tokens: list[Token], max_tokens: int = MAX_TOKENS) -> None:
    """Bound what the recursive parser will be asked to do, on the flat token list."""
    if len(tokens) > max_tokens:
        raise _too_complex(
            f"the query has {len(tokens)} tokens; the limit is {max_tokens}",
            "send a smaller query (split it, or put long value lists in a table or bound parameters)",
        )
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


def parse(sql: str, dialect: str | SafetyProfile) -> list[exp.Expr]:
    """Parse ``sql`` into statements; any parser complaint is a PARSE_ERROR."""
    return [statement for statement, _ in parse_with_tokens(sql, dialect)]


def parse_with_tokens(
    sql: str, dialect: str | SafetyProfile, max_tokens: int = MAX_TOKENS
) -> list[tuple[exp.Expr, list[Token]]]:
    """Each statement of ``sql`` with the tokens it was parsed from.

    Statements are split on semicolons as sqlglot splits them; what follows the last
    semicolon when it is only a comment (``SELECT 1; -- count``) is no statement. Every
    string literal must read the same to sqlglot and to the server (``literals.verify``).
    """
    profile = profiles.get(dialect)
    try:
        sqlglot_dialect_ = sqlglot.Dialect.get_or_raise(profile.sqlglot_dialect)
        tokens = sqlglot_dialect_.tokenize(sql)
        guard_tokens(tokens, max_tokens)
        profile.guard_tokens(tokens)
        literals.verify(tokens, sql, profile.strings)
        statements = sqlglot_dialect_.parser(error_level=ErrorLevel.RAISE).parse(tokens, sql)
    except PolicyViolation:
        raise
    except RecursionError:
        raise _too_complex("the query is too deeply nested to analyse") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a denial (fail closed)
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PolicyViolation(
            f"could not parse the query as {profile.name} SQL: {first_line}",
            _parse_hint(sql, profile),
            code="PARSE_ERROR",
        ) from None
    chunks = _chunks(tokens)
    if len(chunks) != len(statements):  # pragma: no cover - sqlglot splits the same way
        chunks = [[] for _ in statements]
    found = [
        (statement, chunk) for statement, chunk in zip(statements, chunks, strict=True)
        if statement is not None and not isinstance(statement, exp.Semicolon)
    ]
    for statement, chunk in found:
        if chunk:
            arguments.check_arguments(statement, chunk, profile)
    if any(t.token_type is TokenType.HINT for t in tokens):
        for statement, chunk in found:
            _guard_hints(statement, sum(1 for t in chunk if t.token_type is TokenType.HINT))
    if profile.strings.escape_strings and any(t.token_type is TokenType.BYTE_STRING for t in tokens):
        # PostgreSQL E'...' is a text literal like any other (its value decoded above).
        for statement, _ in found:
            for node in list(statement.find_all(exp.ByteString)):
                node.replace(exp.Literal.string(str(node.this)))
    if not found:
        raise PolicyViolation("the query is empty", "send one SQL statement", code="PARSE_ERROR")
    return found


def _guard_hints(statement: exp.Expr, written: int) -> None:
    """An optimizer hint (``/*+ ... */``) must parse into calls the rules can see: hint
    text sqlglot keeps raw, or takes for a comment where the server reads a hint, would
    reach the server unchecked (MySQL runs the hints before a syntax error, ``SET_VAR``
    among them)."""
    hints = list(statement.find_all(exp.Hint))
    if len(hints) != written:
        raise PolicyViolation(
            "the query has an optimizer hint (/*+ ... */) where sqlgate does not read one",
            "remove the hint, or put it right after SELECT: SELECT /*+ MAX_EXECUTION_TIME(1000) */ ...",
            code="PARSE_ERROR",
        )
    for hint in hints:
        if not all(isinstance(item, exp.Func) for item in hint.expressions):
            raise PolicyViolation(
                f"sqlgate cannot read the optimizer hint {hint.sql(comments=False)[:60]}",
                "remove the /*+ ... */ hint; sqlgate admits hints it can parse, like "
                "/*+ MAX_EXECUTION_TIME(1000) */",
                code="PARSE_ERROR",
            )


def _chunks(tokens: list[Token]) -> list[list[Token]]:
    """The token list split into statements exactly as sqlglot's parser splits it."""
    chunks: list[list[Token]] = [[]]
    total = len(tokens)
    for i, token in enumerate(tokens):
        if token.token_type is TokenType.SEMICOLON:
            if token.comments:
                chunks.append([token])
            if i < total - 1:
                chunks.append([])
        else:
            chunks[-1].append(token)
    return chunks


def _parse_hint(sql: str, profile: SafetyProfile) -> str:
    if "%s" in sql or "%(" in sql:
        return (f"write placeholders as {profile.positional_placeholder} (values in `parameters` as an array) "
                "or :name (values as an object); %s is not a placeholder sqlgate reads")
    if "?" in sql or "$" in sql:
        return (f"on {profile.name} write positional placeholders as {profile.positional_placeholder} "
                "(values in `parameters` as an array) or named ones as :name (values as an object)")
    return "check the syntax; sqlgate only runs SQL it can fully parse"
