"""The verdict cache by statement shape: literals hoisted into bound parameters.

``safety.check`` caches verdicts by exact text, so an agent that asks for ``id = 41``,
then ``id = 42``, ... misses every time. ``check_shape`` keys a second cache on the
text with some integer literals taken out, and sends those literals as bound
parameters of one checked statement, whose rendering (``db.dialects.bind``) is cached
too. It hoists only where the value cannot change the verdict:

* only integer literals (at most 9 digits: every integer column type takes them as a
  parameter) compared (``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``) with a plain column,
  so the database infers the parameter's type from that column. Literals anywhere else
  stay in the key: LIMIT/OFFSET (the row cap reads them), function arguments (function
  rules and cost caps read them), IN lists, BETWEEN, arithmetic, the select list;
* only statements that do not write;
* a shape is cached only after the validator has seen it twice — with the literals as
  sent and with every hoisted literal replaced by a different sentinel — and both
  verdicts agree in everything but those values (kinds, tables, writes, parameters, row
  cap, warnings, and the rendered text up to the literals). A verdict that depends on a
  hoisted value is never cached by shape; that text goes through ``safety.check``.

A denial is never cached by shape (``safety.check`` raises it and keeps its own cache).
The literals are found by a small lexer that skips strings, quoted identifiers and
comments; it only has to be right about what it hoists, and each hoisted position is
confirmed on the parsed tree (a sentinel that does not come back as a number literal in
a column comparison means no shape entry).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from sqlglot import exp

from sqlgate.safety import check, profiles
from sqlgate.safety.policy import Policy
from sqlgate.safety.profiles import SafetyProfile
from sqlgate.safety.verdict import Verdict

SHAPE_CACHE_SIZE = 2048
MAX_HOISTED = 16
PARAM_PREFIX = "sqlgate_lit_"

# Strings, quoted identifiers and comments are skipped whole; a dollar quote (or any
# text the lexer is unsure of) stops hoisting for that statement.
_TOKENS = re.compile(
    r"""
      (?P<skip>'(?:[^'\\]|\\.|'')*'        # string literal
              |"(?:[^"]|"")*"             # quoted identifier
              |`(?:[^`]|``)*`             # MySQL quoted identifier
              |--[^\n]*                   # line comment
              |\#[^\n]*                   # MySQL line comment
              |/\*.*?\*/)                 # block comment
    | (?P<stop>\$|\\|'|"|`|/\*)           # dollar quote, stray quote: do not guess
    | (?<![\w.$:@?])(?P<num>\d{1,9})(?![\w.])  # an integer literal
    """,
    re.S | re.X,
)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


@dataclass(frozen=True)
class _Shape:
    verdict: Verdict  # statement with Placeholder nodes where the literals were
    sql_parts: tuple[str, ...]  # verdict.sql split around the hoisted literals
    names: tuple[str, ...]
    hoisted: tuple[int, ...]  # which literal spans are hoisted, in order
    fixed: tuple[tuple[int, str], ...]  # the others: part of the key, must match exactly


_NO_SHAPE = object()
_SHAPES: dict[tuple[str, SafetyProfile, Policy], Any] = {}


def literal_spans(sql: str) -> list[tuple[int, int]] | None:
    """Positions of the hoistable-looking integer literals, or None when unsure."""
    if "\x00" in sql:
        return None
    spans: list[tuple[int, int]] = []
    for match in _TOKENS.finditer(sql):
        if match.group("stop") is not None:
            return None
        if match.group("num") is not None:
            spans.append(match.span("num"))
            if len(spans) > MAX_HOISTED:
                return None
    return spans


def _shape_key(sql: str, spans: list[tuple[int, int]]) -> str:
    out, last = [], 0
    for start, end in spans:
        out.append(sql[last:start])
        out.append("\x00")
        last = end
    out.append(sql[last:])
    return "".join(out)


def check_shape(sql: str, dialect: str | SafetyProfile, policy: Policy) -> Verdict:
    """``safety.check``, served from the shape cache when only hoisted literals differ.

    A verdict from the shape cache carries the literals in ``bound`` (merged into the
    parameters by the execution layer) and placeholders in its ``expressions``; its
    ``sql`` is the text as it would have been rendered with the literals in place.
    """
    profile = profiles.get(dialect)
    spans = literal_spans(sql)
    if not spans:
        return check(sql, profile, policy)
    key = (_shape_key(sql, spans), profile, policy)
    entry = _SHAPES.get(key)
    if entry is None:
        verdict = check(sql, profile, policy)  # a denial raises here: nothing is cached
        entry = _learn(sql, spans, profile, policy, verdict)
        if len(_SHAPES) >= SHAPE_CACHE_SIZE:
            del _SHAPES[next(iter(_SHAPES))]
        _SHAPES[key] = entry
        return verdict
    if entry is _NO_SHAPE:
        return check(sql, profile, policy)
    shape: _Shape = entry
    values = [sql[start:end] for start, end in spans]
    for index, text in shape.fixed:
        if values[index] != text:  # e.g. another LIMIT: that text goes through check
            return check(sql, profile, policy)
    text_parts = [shape.sql_parts[0]]
    for index, part in zip(shape.hoisted, shape.sql_parts[1:], strict=True):
        text_parts.append(values[index])
        text_parts.append(part)
    return replace(
        shape.verdict,
        sql="".join(text_parts),
        bound=tuple((name, int(values[i])) for name, i in zip(shape.names, shape.hoisted, strict=True)),
    )


def shape_cache_clear() -> None:
    _SHAPES.clear()


def _sentinels(sql: str, count: int) -> list[str]:
    found: list[str] = []
    candidate = 731_904_265
    while len(found) < count:
        text = str(candidate)
        if text not in sql:
            found.append(text)
        candidate += 1_000_003
    return found


def _column_comparison(literal: exp.Literal) -> bool:
    parent = literal.parent
    if literal.is_string or not isinstance(parent, _COMPARISONS):
        return False
    if literal.arg_key == "this":
        return isinstance(parent.expression, exp.Column)
    return literal.arg_key == "expression" and isinstance(parent.this, exp.Column)


def _learn(sql: str, spans: list[tuple[int, int]], profile: SafetyProfile, policy: Policy, verdict: Verdict) -> Any:
    """The shape entry for ``sql``, or ``_NO_SHAPE`` when hoisting could change anything."""
    if verdict.writes or len(verdict.expressions) != 1 or getattr(verdict, "positional", False):
        return _NO_SHAPE  # positional placeholders ($1, ?) are numbered: named ones do not mix
    originals = [sql[start:end] for start, end in spans]
    # Literal texts that occur in the statement only as column comparison operands.
    compared: dict[str, int] = {}
    others: set[str] = set()
    for literal in verdict.expressions[0].find_all(exp.Literal):
        if _column_comparison(literal):
            compared[literal.this] = compared.get(literal.this, 0) + 1
        elif not literal.is_string:
            others.add(literal.this)
    hoisted = tuple(
        i for i, text in enumerate(originals)
        if text in compared and text not in others and compared[text] == originals.count(text)
    )
    if not hoisted:
        return _NO_SHAPE
    sentinels = _sentinels(sql, len(hoisted))
    by_index = dict(zip(hoisted, sentinels, strict=True))
    probe_parts, last = [], 0
    for i, (start, end) in enumerate(spans):
        probe_parts += [sql[last:start], by_index.get(i, originals[i])]
        last = end
    probe_parts.append(sql[last:])
    try:
        probe = check("".join(probe_parts), profile, policy)
    except Exception:  # noqa: BLE001 - a sentinel changed the verdict: no shape entry
        return _NO_SHAPE
    if (
        probe.statement_kinds != verdict.statement_kinds
        or probe.tables != verdict.tables
        or probe.writes != verdict.writes
        or probe.parameters != verdict.parameters
        or probe.row_capped != verdict.row_capped
        or probe.warnings != verdict.warnings
        or probe.dialect != verdict.dialect
        or len(probe.expressions) != 1
    ):
        return _NO_SHAPE
    sql_parts: list[str] = []
    rest = probe.sql
    for sentinel in sentinels:
        pieces = rest.split(sentinel)
        if len(pieces) != 2:
            return _NO_SHAPE
        sql_parts.append(pieces[0])
        rest = pieces[1]
    sql_parts.append(rest)
    rebuilt = [sql_parts[0]]
    for i, part in zip(hoisted, sql_parts[1:], strict=True):
        rebuilt += [originals[i], part]
    if "".join(rebuilt) != verdict.sql:
        return _NO_SHAPE
    names = tuple(f"{PARAM_PREFIX}{n}" for n in range(len(hoisted)))
    if set(names) & set(verdict.parameters):
        return _NO_SHAPE
    tree = probe.expressions[0].copy()
    by_text = dict(zip(sentinels, names, strict=True))
    found = 0
    for literal in list(tree.find_all(exp.Literal)):
        name = by_text.get(literal.this) if not literal.is_string else None
        if name is None:
            continue
        if not _column_comparison(literal):
            return _NO_SHAPE
        literal.replace(exp.Placeholder(this=name))
        found += 1
    if found != len(sentinels):
        return _NO_SHAPE
    fixed = tuple((i, originals[i]) for i in range(len(spans)) if i not in by_index)
    return _Shape(replace(probe, expressions=(tree,), sql=""), tuple(sql_parts), names, hoisted, fixed)


__all__ = ["PARAM_PREFIX", "check_shape", "literal_spans", "shape_cache_clear"]
