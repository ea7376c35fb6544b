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

import sqlglot
from sqlglot import exp
from sqlglot.tokenizer_core import Token, TokenType

from sqlgate.safety import literals
from sqlgate.safety.profiles import SafetyProfile

META_KEY = "sqlgate.sent"

_PLAIN = re.compile(r"(?:[\w$]+(?:\s+[\w$]+)*|[-+*/%<>=!~^&|#@?:.,;()\[\]{}]+)\Z")
_NAME = re.compile(r"[A-Za-z_]\w*\Z")
_NUMBER = re.compile(r"(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\Z")
_HINT = re.compile(r"/\*\+[^*/;'\"`\\]*\*/\Z")
_GAP = re.compile(r"[ \t\r\n]*\Z")
_MERGEABLE = frozenset("-+*/<>=!~^&|%#@?:")
_QUOTES = frozenset("'\"`")
_BINARY_TOKENS = frozenset({TokenType.BIT_STRING, TokenType.HEX_STRING})
_NAME_TOKENS = frozenset({TokenType.VAR, TokenType.IDENTIFIER})
_SPECIAL = literals.STRING_TOKENS | _BINARY_TOKENS | {
    TokenType.IDENTIFIER, TokenType.NUMBER, TokenType.PLACEHOLDER, TokenType.PARAMETER, TokenType.COLON,
    TokenType.MOD, TokenType.HINT,
}
_QUOTERS: dict[str, Any] = {}
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
    return bool(_NAME.match(sql[run[2].start:run[2].end + 1]))


def emit(
    tokens: list[Token], sql: str, profile: SafetyProfile, cap: int | None, append_cap: bool
) -> tuple[str, list[str], bool] | None:
    """(display text, template parts, positional) for ``tokens``, or None if it cannot.

    ``cap``: the row cap to write (appended as LIMIT when ``append_cap``, else replacing
    the statement's LIMIT count); None leaves the LIMIT as written.
    """
    render_string = profile.strings.render
    style = profile.positional_placeholder  # ? is a jsonb operator on PostgreSQL
    quote = _quoter(profile.sqlglot_dialect)
    out: list[str] = []
    holes: list[tuple[int, str]] = []  # (index in out, placeholder name)
    positional = named = False
    count_index = _limit_count_index(tokens) if cap is not None and not append_cap else None
    if cap is not None and not append_cap and count_index is None:
        return None
    prev_end = -1
    prev_piece = ""
    prev_string = False
    sequence = 0
    i, n = 0, len(tokens)
    while i < n:
        token = tokens[i]
        kind = token.token_type
        raw = sql[token.start:token.end + 1]
        step = 1
        placeholder = None
        is_string = False
        if kind not in _SPECIAL:
            if _PLAIN.match(raw):
                piece = raw
            elif _PLAIN.match(token.text):
                piece = token.text  # a keyword written across a comment (ORDER /* */ BY)
            else:
                return None
        elif kind in literals.STRING_TOKENS:
            if prev_string:
                return None  # 'a' 'b': concatenated by some servers, an alias to others
            is_string = True
            piece = render_string(token.text)
            if kind is TokenType.NATIONAL_STRING:
                if not piece.startswith("'"):
                    return None  # N'...' has no escape form
                piece = "N" + piece
        elif kind is TokenType.IDENTIFIER:
            piece = quote(token.text)
        elif kind is TokenType.NUMBER:
            if not _NUMBER.match(raw):
                return None
            piece = str(cap) if i == count_index else raw
        else:
            nxt = tokens[i + 1] if i + 1 < n else None
            adjacent = nxt is not None and nxt.start == token.end + 1
            if kind is TokenType.PLACEHOLDER and raw == "?" and style == "?":
                sequence += 1
                placeholder, piece, positional = str(sequence), "?", True
            elif (kind is TokenType.PARAMETER and raw == "$" and style == "$1" and adjacent and nxt is not None
                    and nxt.token_type is TokenType.NUMBER and nxt.text.isdigit()):
                placeholder, piece, positional, step = str(int(nxt.text)), f"${int(nxt.text)}", True, 2
            elif (kind is TokenType.COLON and adjacent and nxt is not None
                    and nxt.token_type in _NAME_TOKENS and _NAME.match(sql[nxt.start:nxt.end + 1])):
                placeholder, piece, named, step = nxt.text, f":{nxt.text}", True, 2
            elif kind is TokenType.MOD and i + 4 < n and _percent_name(tokens, i, sql):
                name = tokens[i + 2].text
                placeholder, piece, named, step = name, f"%({name})s", True, 5
            elif kind in _BINARY_TOKENS:
                if not literals.binary_literal(raw):
                    return None
                piece = raw
            elif kind is TokenType.HINT:
                if not _HINT.match(raw):
                    return None
                piece = raw
            elif _PLAIN.match(raw):
                piece = raw
            else:
                return None
        if prev_end >= 0:
            gap = sql[prev_end + 1:token.start]
            if gap:
                if gap != " " and not _GAP.match(gap):
                    gap = " "
                out.append(gap)
            elif _needs_space(prev_piece, piece):
                out.append(" ")
        if placeholder is not None:
            holes.append((len(out), placeholder))
        out.append(piece)
        prev_end = tokens[i + step - 1].end
        prev_piece = piece
        prev_string = is_string
        i += step
    if positional and named:
        return None
    if cap is not None and append_cap:
        out.append(f" LIMIT {cap}")
    display = "".join(out)
    parts: list[str] = []
    start = 0
    for index, name in holes:
        parts.append("".join(out[start:index]))
        parts.append(name)
        start = index + 1
    parts.append("".join(out[start:]))
    return display, parts, positional


def _quoter(dialect: str) -> Any:
    quoter = _QUOTERS.get(dialect)
    if quoter is None:
        glot = sqlglot.Dialect.get_or_raise(dialect)
        start, end = glot.IDENTIFIER_START, glot.IDENTIFIER_END

        def quoter(name: str) -> str:
            return start + name.replace(end, end + end) + end

        _QUOTERS[dialect] = quoter
    return quoter


def same_tokens(tokens: list[Token], text: str, profile: SafetyProfile, cap: int | None, append: bool) -> bool:
    """Whether sqlglot reads ``text`` as exactly ``tokens`` (string literals by value; the
    row cap's LIMIT appended or its count replaced), so it parses into the same tree."""
    try:
        again = sqlglot.Dialect.get_or_raise(profile.sqlglot_dialect).tokenize(text)
    except Exception:  # noqa: BLE001 - unreadable: the caller compares trees instead
        return False
    expected = len(tokens) + (2 if cap is not None and append else 0)
    if len(again) != expected:
        return False
    count_index = _limit_count_index(tokens) if cap is not None and not append else None
    for index, (a, b) in enumerate(zip(tokens, again, strict=False)):
        if a.token_type in literals.STRING_TOKENS:
            if b.token_type not in literals.STRING_TOKENS or a.text != b.text:
                return False
        elif a.token_type is not b.token_type:
            return False
        elif index == count_index:
            if b.text != str(cap):
                return False
        elif a.text != b.text:
            return False
    if cap is not None and append:
        tail = again[-2:]
        return tail[0].token_type is TokenType.LIMIT and tail[1].text == str(cap)
    return True


def register(statement: exp.Expr, dialect: str, parts: list[str]) -> None:
    statement.meta[META_KEY] = Sent(dialect, parts)


__all__ = ["META_KEY", "Sent", "emit", "register", "same_tokens", "sent_parts"]
