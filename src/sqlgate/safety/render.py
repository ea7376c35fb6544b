"""The SQL sent: the checked statement written back from the tokens it was parsed from.

Re-rendering the tree with sqlglot's generator changes what the agent gets back: function
names are upper-cased (MySQL/SQLite label ``count(*)`` as ``COUNT(*)``), calls are
replaced by their canonical form (``date_part`` becomes ``EXTRACT`` with another label
and type, MariaDB's ``REGEXP`` becomes ``REGEXP_LIKE``, which MariaDB lacks). So the
text sent is written from the checked statement's own token stream instead:

* every token as sqlglot read it — words, numbers and operators as written, string
  literals in one canonical form (``StringSyntax.render``), quoted identifiers re-quoted,
  comments dropped (the server never sees text the validator did not read);
* the original whitespace between tokens where it is plain whitespace, a space where two
  tokens could otherwise run together (``1--1``, ``a"b"``);
* the row cap as a LIMIT appended or lowered.

Then the text is parsed again: the tree must equal the checked one (what is checked is
what is sent). When any step does not hold — an unusual token, a different tree — the
statement is rendered by sqlglot's generator as before. The placeholder template
(``Sent``) rides on the statement's ``meta``; a ``copy()`` of the statement drops it, so
a changed copy is never sent with a stale text.
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp
from sqlglot.tokenizer_core import Token, TokenType

from sqlgate.safety import literals
from sqlgate.safety.profiles import SafetyProfile

META_KEY = "sqlgate.sent"

_WORDS = re.compile(r"[\w$]+(?:\s+[\w$]+)*\Z")
_NUMBER = re.compile(r"(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\Z")
_OPERATOR = re.compile(r"[-+*/%<>=!~^&|#@?:.,;()\[\]{}]+\Z")
_HINT = re.compile(r"/\*\+[^*/;'\"`\\]*\*/\Z")
_GAP = re.compile(r"[ \t\r\n]*\Z")
_MERGEABLE = frozenset("-+*/<>=!~^&|%#@?:")
_QUOTES = frozenset("'\"`")
_BINARY_TOKENS = frozenset({TokenType.BIT_STRING, TokenType.HEX_STRING})
_DEPTH = {TokenType.L_PAREN: 1, TokenType.L_BRACKET: 1, TokenType.R_PAREN: -1, TokenType.R_BRACKET: -1}


class Sent:
    """The text a checked statement is sent as: parts alternate text and placeholder names."""

    __slots__ = ("dialect", "parts")

    def __init__(self, dialect: str, parts: list[str]) -> None:
        self.dialect = dialect
        self.parts = parts

    # A copied statement may be changed after the copy: it is rendered afresh.
    def __copy__(self) -> None:
        return None

    def __deepcopy__(self, memo: dict[int, Any]) -> None:
        return None


def sent_parts(statement: exp.Expr, dialect: str) -> list[str] | None:
    """The template registered for ``statement`` (text, name, text, ..., text), if any."""
    sent = statement.meta.get(META_KEY)
    if isinstance(sent, Sent) and sent.dialect == dialect:
        return sent.parts
    return None


def _word(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


def _needs_space(prev: str, nxt: str) -> bool:
    a, b = prev[-1], nxt[0]
    if (_word(a) or a in _QUOTES) and (_word(b) or b in _QUOTES):
        return True
    if a in _MERGEABLE and b in _MERGEABLE:
        return True
    return (a == "." and b.isdigit()) or (a.isdigit() and b == ".")


def _limit_count_index(tokens: list[Token]) -> int | None:
    """The token holding the row count of the statement's own (depth 0) LIMIT."""
    depth = 0
    found = None
    for i, token in enumerate(tokens):
        depth += _DEPTH.get(token.token_type, 0)
        if depth == 0 and token.token_type is TokenType.LIMIT:
            found = i
    if found is None or found + 1 >= len(tokens) or tokens[found + 1].token_type is not TokenType.NUMBER:
        return None
    index = found + 1
    if (index + 2 < len(tokens) and tokens[index + 1].token_type is TokenType.COMMA
            and tokens[index + 2].token_type is TokenType.NUMBER):
        index += 2  # MySQL LIMIT offset, count
    return index


def _percent_name(tokens: list[Token], i: int, sql: str) -> bool:
    """``%(name)s`` written without spaces (PostgreSQL reads it as a named placeholder)."""
    run = tokens[i:i + 5]
    kinds = [t.token_type for t in run]
    if kinds != [TokenType.MOD, TokenType.L_PAREN, TokenType.VAR, TokenType.R_PAREN, TokenType.VAR]:
        return False
    if run[4].text != "s" or any(run[k + 1].start != run[k].end + 1 for k in range(4)):
        return False
    return bool(re.fullmatch(r"[A-Za-z_]\w*", sql[run[2].start:run[2].end + 1]))


def emit(
    tokens: list[Token], sql: str, profile: SafetyProfile, cap: int | None, append_cap: bool
) -> tuple[str, list[str], bool] | None:
    """(display text, template parts, positional) for ``tokens``, or None if it cannot.

    ``cap``: the row cap to write (appended as LIMIT when ``append_cap``, else replacing
    the statement's LIMIT count); None leaves the LIMIT as written.
    """
    syntax = profile.strings
    dialect = profile.sqlglot_dialect
    display: list[str] = []
    parts: list[str] = []
    text: list[str] = []  # the template's current text part
    positional = named = False
    count_index = _limit_count_index(tokens) if cap is not None and not append_cap else None
    if cap is not None and not append_cap and count_index is None:
        return None
    prev: Token | None = None
    prev_piece = ""
    sequence = 0
    i, n = 0, len(tokens)
    while i < n:
        token = tokens[i]
        kind = token.token_type
        raw = sql[token.start:token.end + 1]
        placeholder: str | None = None
        shown = ""
        step = 1
        nxt = tokens[i + 1] if i + 1 < n else None
        if kind is TokenType.PLACEHOLDER and raw == "?":
            sequence += 1
            placeholder, shown, positional = str(sequence), "?", True
        elif kind is TokenType.PARAMETER and raw == "$" and nxt is not None and nxt.start == token.end + 1 \
                and nxt.token_type is TokenType.NUMBER and nxt.text.isdigit():
            placeholder, shown, positional, step = str(int(nxt.text)), f"${int(nxt.text)}", True, 2
        elif kind is TokenType.COLON and nxt is not None and nxt.start == token.end + 1 \
                and nxt.token_type in (TokenType.VAR, TokenType.IDENTIFIER) \
                and re.fullmatch(r"[A-Za-z_]\w*", sql[nxt.start:nxt.end + 1]):
            placeholder, shown, named, step = nxt.text, f":{nxt.text}", True, 2
        elif kind is TokenType.MOD and i + 4 < n and _percent_name(tokens, i, sql):
            name = tokens[i + 2].text
            placeholder, shown, named, step = name, f"%({name})s", True, 5
        elif kind in literals.STRING_TOKENS:
            if prev is not None and prev.token_type in literals.STRING_TOKENS:
                return None  # 'a' 'b': concatenated by some servers, an alias to others
            piece = syntax.render(token.text)
            if kind is TokenType.NATIONAL_STRING:
                piece = "N" + piece
        elif kind is TokenType.IDENTIFIER:
            piece = exp.to_identifier(token.text, quoted=True).sql(dialect)
        elif kind in _BINARY_TOKENS:
            if not literals.binary_literal(raw):
                return None
            piece = raw
        elif kind is TokenType.HINT:
            if not _HINT.match(raw):
                return None
            piece = raw
        elif kind is TokenType.NUMBER:
            if not _NUMBER.match(raw):
                return None
            piece = str(cap) if i == count_index else raw
        elif _WORDS.match(raw) or _OPERATOR.match(raw):
            piece = raw
        elif _WORDS.match(token.text) or _OPERATOR.match(token.text):
            piece = token.text  # a keyword written across a comment (ORDER /* */ BY)
        else:
            return None
        if placeholder is not None:
            piece = shown
        if prev is not None:
            gap = sql[prev.end + 1:token.start]
            if not _GAP.match(gap):
                gap = " "
            if not gap and _needs_space(prev_piece, piece):
                gap = " "
            display.append(gap)
            text.append(gap)
        display.append(piece)
        if placeholder is not None:
            parts.append("".join(text))
            parts.append(placeholder)
            text = []
        else:
            text.append(piece)
        prev = tokens[i + step - 1]
        prev_piece = piece
        i += step
    if positional and named:
        return None
    if cap is not None and append_cap:
        display.append(f" LIMIT {cap}")
        text.append(f" LIMIT {cap}")
    parts.append("".join(text))
    return "".join(display), parts, positional


def register(statement: exp.Expr, dialect: str, parts: list[str]) -> None:
    statement.meta[META_KEY] = Sent(dialect, parts)


__all__ = ["META_KEY", "Sent", "emit", "register", "sent_parts"]
