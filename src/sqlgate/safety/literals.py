"""String literals: what the server reads in a literal's text, and how sqlgate writes one.

sqlglot decodes a string literal into its value (``token.text``); the server decodes the
same characters by its own rules. Before parsing, every string literal's raw text is
decoded here by the server's rules (as sqlgate pins the session: PostgreSQL with
``standard_conforming_strings=on``, MySQL/MariaDB without ``NO_BACKSLASH_ESCAPES``) and
compared with sqlglot's value: where they differ (PostgreSQL ``'a\\'``, an escape
sqlglot decodes otherwise) the text is refused — the validator would check one value
and the server would read another, or another statement.

The SQL sent writes each value back in one canonical form (``render``) that means the
same value whatever the server's string settings: PostgreSQL values with a backslash
become ``E'...'`` escape strings (read alike with ``standard_conforming_strings`` on or
off), MySQL values escape ``\\`` and ``'``. Pure functions, no dialect names: a profile
holds a ``StringSyntax``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot.tokenizer_core import Token, TokenType

from sqlgate.errors import PolicyViolation

# Token types whose text is a decoded string value.
STRING_TOKENS = frozenset(
    {TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.BYTE_STRING, TokenType.HEREDOC_STRING}
)
# Binary and bit literals are sent as written when they have exactly this shape.
_BINARY_LITERAL = re.compile(r"(?:[xX]'[0-9a-fA-F]*'|[bB]'[01]*'|0x[0-9a-fA-F]+|0b[01]+)\Z")

_OPENERS = frozenset("'\"$eEnN")
_MYSQL_ESCAPES = {"0": "\x00", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}
# PostgreSQL E'...' escapes sqlgate decodes; octal, \x and unicode escapes are refused.
_PG_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_PG_REFUSED = frozenset("01234567xuU")


@dataclass(frozen=True)
class StringSyntax:
    """How one dialect's server reads string literals (as sqlgate pins its sessions)."""

    backslash_escapes: bool = False
    """Plain ``'...'`` strings decode backslash escapes (MySQL/MariaDB)."""
    escape_strings: bool = False
    """``E'...'`` strings decode C-style escapes; plain strings do not (PostgreSQL)."""
    double_quoted_strings: bool = False
    """``"..."`` is a string, not an identifier (MySQL without ANSI_QUOTES)."""

    def render(self, value: str) -> str:
        """The canonical literal for ``value``."""
        quoted = value.replace("'", "''")
        if "\\" not in value:
            return f"'{quoted}'"
        if self.backslash_escapes:
            return "'" + quoted.replace("\\", "\\\\") + "'"
        if self.escape_strings:
            return "E'" + quoted.replace("\\", "\\\\") + "'"
        return f"'{quoted}'"

    def read(self, token: Token, raw: str) -> str | None:
        """The value the server reads in ``raw`` (a literal's text), or None when sqlgate
        does not decode that form."""
        kind = token.token_type
        if kind is TokenType.HEREDOC_STRING:
            return token.text  # dollar quoting: the text between the tags, no escapes
        if kind is TokenType.NATIONAL_STRING and raw[:1] in "nN":
            raw = raw[1:]
        if kind is TokenType.BYTE_STRING:
            if not self.escape_strings or raw[:1] not in "eE":
                return None
            return _read_escape_string(raw[1:])
        if kind not in (TokenType.STRING, TokenType.NATIONAL_STRING) or len(raw) < 2:
            return None
        quote = raw[0]
        if quote != raw[-1] or quote not in ("'\"" if self.double_quoted_strings else "'"):
            return None
        body = raw[1:-1]
        if self.backslash_escapes:
            return _read_backslash_string(body, quote)
        if quote in body.replace(quote * 2, ""):
            return None  # a lone quote: the literal ends earlier for the server
        if self.escape_strings and body.endswith("\\"):
            # 'a\' ends here only with standard_conforming_strings on: the shape of the
            # smuggling trick for a server where it is off. Refused, whatever the setting.
            return None
        return body.replace(quote * 2, quote)


def _read_backslash_string(body: str, quote: str) -> str | None:
    """MySQL: backslash escapes; ``\\%`` and ``\\_`` keep their backslash (LIKE patterns)."""
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch == "\\":
            if i + 1 >= n:
                return None
            nxt = body[i + 1]
            out.append(_MYSQL_ESCAPES.get(nxt, "\\" + nxt if nxt in "%_" else nxt))
            i += 2
        elif ch == quote:
            if i + 1 >= n or body[i + 1] != quote:
                return None
            out.append(quote)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _read_escape_string(raw: str) -> str | None:
    """PostgreSQL ``E'...'`` (``raw`` from the opening quote)."""
    if len(raw) < 2 or raw[0] != "'" or raw[-1] != "'":
        return None
    body = raw[1:-1]
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch == "\\":
            if i + 1 >= n:
                return None
            nxt = body[i + 1]
            if nxt in _PG_REFUSED:
                return None
            out.append(_PG_ESCAPES.get(nxt, nxt))
            i += 2
        elif ch == "'":
            if i + 1 >= n or body[i + 1] != "'":
                return None
            out.append("'")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def binary_literal(raw: str) -> bool:
    """Whether a bit/hex literal's text has a shape every server reads alike."""
    return bool(_BINARY_LITERAL.match(raw))


def verify(tokens: list[Token], sql: str, syntax: StringSyntax) -> None:
    """Refuse any string literal whose value the server would read differently."""
    previous = None
    for token in tokens:
        kind, previous_kind = token.token_type, previous
        previous = kind
        if kind not in STRING_TOKENS or previous_kind is TokenType.COMMAND:
            continue  # after EXPLAIN (an opaque command) the rest is parsed and verified again
        raw = sql[token.start:token.end + 1]
        if raw[:1] not in _OPENERS:
            continue  # the rest of an opaque command, not a literal: such statements are refused
        value = syntax.read(token, raw)
        if value is None or value != token.text:
            raise PolicyViolation(
                f"sqlgate cannot read the string literal {_short(raw)} the way the database would",
                "write backslashes only as in a regular expression ('^\\w+$'), use E'...' only for "
                "\\n, \\t, \\\\ and \\', or pass the text as a bound parameter",
                code="PARSE_ERROR",
            )


def _short(raw: str) -> str:
    return raw if len(raw) <= 40 else raw[:37] + "..."
