"""Every argument a call passes in the text is in the checked tree, as what the server reads.

The SQL sent is written from the statement's own tokens (``safety.render``), so it holds
every argument the agent wrote; the rules judge sqlglot's tree. Some of sqlglot's function
builders do not keep what they were given: they drop arguments past the ones they model
(MySQL ``LENGTH(name, ssn)`` is ``Length(name)``; MariaDB ``DATE_FORMAT(d, '%M', locale)``
keeps two, and a third argument ``(SELECT secret FROM other)`` runs unchecked), or turn a
name into a keyword (PostgreSQL ``date_part(ssn, now())`` and ``date_trunc(ssn, now())`` read
the column ``ssn``, whose value comes back in the error message; sqlglot holds the unit
``SSN``). Either way the server reads a column or a table the rules never saw.

So for every call written ``name(arg, arg, ...)``:

* each argument that holds a name or a subquery must have a node of the tree inside its
  text (a dropped argument has none; one of literals only reads nothing and is let be);
* an argument that is one bare name must be a column reference in the tree, unless the
  profile lists that position as one the server reads as a keyword
  (``SafetyProfile.keyword_arguments``: MySQL ``TIMESTAMPDIFF(DAY, ...)``).

What cannot be accounted for is refused (``PARSE_ERROR``).
"""

from __future__ import annotations

from bisect import bisect_left
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.tokenizer_core import Token, TokenType

from sqlgate.errors import PolicyViolation
from sqlgate.safety.profiles import SafetyProfile

_NAMES = frozenset({TokenType.VAR, TokenType.IDENTIFIER})
# Tokens that make an argument read something: a name (a column, a table, a function) or
# a query. An argument of literals only reads nothing (and sqlglot rebuilds some literals,
# a JSON path or DATE '...', into nodes that keep no position).
_MEANINGFUL = _NAMES | {TokenType.SELECT}
# A name right after one of these is a placeholder's name, a unit or a type, not a read.
_NOT_A_READ_AFTER = frozenset({
    TokenType.COLON, TokenType.DCOLON, TokenType.NUMBER, TokenType.STRING, TokenType.R_PAREN,
})


def check_arguments(statement: exp.Expr, tokens: list[Token], profile: SafetyProfile) -> None:
    """Refuse a call whose written arguments the tree does not account for."""
    if not any(t.token_type is TokenType.L_PAREN for t in tokens):
        return
    starts: dict[int, exp.Expr] = {}
    for node in statement.walk():
        if node._meta:  # noqa: SLF001 - no meta dict created per node
            start = node.meta.get("start")
            if isinstance(start, int):
                # An Identifier shares its start with the Column (or call) around it: keep the
                # outermost node that starts there, the one that says what the name is.
                starts.setdefault(start, node)
    ordered = sorted(starts)
    n = len(tokens)
    for i in range(n - 1):
        name, paren = tokens[i], tokens[i + 1]
        if paren.token_type is not TokenType.L_PAREN:
            continue  # (a comment or a space between the name and its parenthesis is still a call)
        owner = starts.get(name.start)
        if isinstance(owner, exp.Identifier):
            continue  # a name kept as a name: a table, an alias with its column list
        if not (isinstance(owner, exp.Func) or name.token_type in _NAMES
                or name.text.upper() in _function_words(profile)):
            continue  # a keyword (IN, VALUES, OVER, ...) or a type with parameters
        # A call, kept as written or rebuilt as something else (MOD(a, b) is a % b,
        # date_part(...) an EXTRACT, TO_DAYS(d) a DATEDIFF(...) + 1).
        for index, (first, last) in enumerate(_arguments(tokens, i + 1)):
            span = tokens[first:last + 1]
            if len(span) == 1 and (name.text.lower(), index) in profile.keyword_arguments:
                continue
            if not _meaningful(span):
                continue
            low, high = span[0].start, span[-1].end
            if not _any_between(ordered, low, high):
                raise _refuse(name.text, index, "is not part of the query sqlgate checked")
            if len(span) == 1 and span[0].token_type in _NAMES:
                if _read_as_name(starts.get(span[0].start)):
                    continue
                raise _refuse(name.text, index, "is a name the database reads as a column, "
                                                "but sqlgate read it as a keyword")


def _read_as_name(node: exp.Expr | None) -> bool:
    """Whether sqlglot kept a lone name argument as the name the server reads: a column
    reference, or the column MySQL's ``VALUES(col)`` names in ``ON DUPLICATE KEY UPDATE``
    (an identifier there, which ``safety.columns`` resolves)."""
    if isinstance(node, exp.Column):
        return True
    if not isinstance(node, exp.Identifier):
        return False
    parent = node.parent
    return isinstance(parent, exp.Column) or (isinstance(parent, exp.Anonymous) and parent.name.upper() == "VALUES")


@lru_cache(maxsize=8)
def _function_words(profile: SafetyProfile) -> frozenset[str]:
    """The names sqlglot parses as calls in the dialect, whatever token type they are
    (``MOD``, ``GLOB``, ``LIKE`` and ``ISNULL`` are keywords to its tokenizer)."""
    parser = sqlglot.Dialect.get_or_raise(profile.sqlglot_dialect).parser_class
    return frozenset(str(n).upper() for n in (*parser.FUNCTIONS, *parser.FUNCTION_PARSERS))


def _arguments(tokens: list[Token], open_index: int) -> list[tuple[int, int]]:
    """The (first, last) token index of each top-level argument between the parenthesis
    at ``open_index`` and the one that closes it."""
    spans: list[tuple[int, int]] = []
    depth = 0
    first = open_index + 1
    for j in range(open_index, len(tokens)):
        kind = tokens[j].token_type
        if kind in (TokenType.L_PAREN, TokenType.L_BRACKET):
            depth += 1
        elif kind in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
            if depth == 0:
                if j > first:
                    spans.append((first, j - 1))
                return spans
        elif kind is TokenType.COMMA and depth == 1:
            if j > first:
                spans.append((first, j - 1))
            first = j + 1
    return spans


def _meaningful(span: list[Token]) -> bool:
    """Whether an argument reads something: a name or a query (not only literals, ``*``,
    NULL, a keyword value or a placeholder such as ``:name``)."""
    for k, token in enumerate(span):
        if token.token_type not in _MEANINGFUL:
            continue
        before = span[k - 1] if k > 0 else None
        if token.token_type in _NAMES and before is not None and before.token_type in _NOT_A_READ_AFTER:
            continue  # :name, a unit after a value (INTERVAL 7 DAY), a type after ::
        return True
    return False


def _any_between(ordered: list[int], low: int, high: int) -> bool:
    at = bisect_left(ordered, low)
    return at < len(ordered) and ordered[at] <= high


def _refuse(name: str, index: int, why: str) -> PolicyViolation:
    return PolicyViolation(
        f"argument {index + 1} of {name}() {why}",
        f"write {name}() with the arguments the database documents for it, each a column, a value "
        "or an expression; sqlgate refuses what it cannot read the way the database does",
        code="PARSE_ERROR",
    )


__all__ = ["check_arguments"]
