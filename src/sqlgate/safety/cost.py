"""Constant-argument caps for functions that build large values (``QUERY_TOO_EXPENSIVE``).

A single function call is a unit of work the database does not interrupt: PostgreSQL's
``repeat``/``lpad`` allocate their whole result before the next interrupt check,
MariaDB's ``LOCATE`` over a ``REPEAT`` string ignores ``KILL QUERY``, SQLite's progress
handler never runs inside ``replace``/``instr``. And a value the database builds is a
value sqlgate receives whole. So the validator bounds what such functions may build:

* value builders (``repeat``/``replicate``, ``lpad``/``rpad``, ``space``,
  ``zeroblob``/``randomblob``, ``printf``/``format`` widths and precisions,
  ``array_fill``) take their size from a literal, and the value they build — with the
  strings around them (``||``, ``concat``, ``replace``) — is at most ``MAX_BUILT_BYTES``;
* a size from a column, a parameter or a subquery is refused (fail closed): the database
  would build whatever it says (SQLite also caps every value at connect: ``setlimit``);
* integer ``generate_series`` spans hold at most ``MAX_SERIES`` values.

Pure: no I/O, no dialect branches (the function names are sqlglot's classes, or the
anonymous names no other dialect uses). ``docs/limits.md`` says why each limit is what it is.
"""

from __future__ import annotations

import re
from typing import Protocol

from sqlglot import exp

from sqlgate.errors import PolicyViolation

# The largest value (bytes) an expression with a value builder may produce. MariaDB's
# LOCATE and SQLite's instr compare naively (time ~ haystack x needle, uninterrupted):
# 100 kB against 50 kB takes ~1.7 s on MariaDB, 1 MB ~170 s.
MAX_BUILT_BYTES = 100_000
# The most values an integer generate_series may produce.
MAX_SERIES = 10_000_000
# What a string of unknown length (a column, a parameter) counts for inside a built value.
UNKNOWN_TEXT_BYTES = 1_024
# The longest text instr/LOCATE/POSITION may search for: at most a 16 MiB haystack (SQLite's
# cap, MariaDB's packet) x 256 bytes of naive comparison, ~0.1 s on SQLite.
MAX_NEEDLE_BYTES = 256

_BUILDERS = frozenset({"zeroblob", "randomblob", "printf", "array_fill", "space", "replicate", "repeat"})
# printf-style conversions: %[n$][flags][width|*][.precision|*]type
_SPEC = re.compile(r"%(?:%|(\d+\$)?[-+ 0#,'!]*(\d+|\*(?:\d+\$)?)?(?:\.(\d+|\*(?:\d+\$)?))?[a-zA-Z])")


def _deny(message: str, hint: str) -> PolicyViolation:
    return PolicyViolation(message, hint, code="QUERY_TOO_EXPENSIVE")


def _too_big(name: str, size: int) -> PolicyViolation:
    return _deny(
        f"{name}(...) would build a value of about {size:,} bytes",
        f"the limit is {MAX_BUILT_BYTES:,} bytes per built value; build a smaller one "
        "(sqlgate returns at most max_value_bytes of any value anyway)",
    )


def _constant(node: exp.Expr | None) -> int | None:
    """The integer a literal size argument holds (through casts, parentheses and a sign)."""
    while isinstance(node, exp.Cast | exp.Paren | exp.TryCast):
        node = node.this
    negative = False
    if isinstance(node, exp.Neg):
        negative, node = True, node.this
    if isinstance(node, exp.Literal):
        text = str(node.this).strip()
        try:
            value = int(float(text)) if not node.is_string or re.fullmatch(r"[-+]?\d+(\.\d*)?", text) else None
        except ValueError:
            return None
        if value is None:
            return None
        return -value if negative else value
    return None


def _size_argument(name: str, node: exp.Expr | None) -> int:
    if node is None:
        return 0
    value = _constant(node)
    if value is None:
        raise _deny(
            f"the size argument of {name}(...) is not a literal number ({node.sql()[:80]})",
            f"write the count/length as a literal number up to {MAX_BUILT_BYTES:,}: sqlgate cannot bound "
            "a value whose size comes from a column, a parameter or a subquery",
        )
    return max(value, 0)


class _Sizer:
    """Estimated bytes an expression produces; memoised per node."""

    def __init__(self) -> None:
        self.memo: dict[int, int] = {}

    def size(self, node: exp.Expr | None) -> int:
        if node is None:
            return 0
        key = id(node)
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self._size(node)
        return found

    def _size(self, node: exp.Expr) -> int:
        if isinstance(node, exp.Literal):
            return len(str(node.this).encode()) if node.is_string else len(str(node.this))
        if isinstance(node, exp.HexString | exp.ByteString | exp.BitString):
            return max(len(str(node.this)) // 2, 1)
        if isinstance(node, exp.Null | exp.Boolean):
            return 4
        if isinstance(node, exp.Paren | exp.Cast | exp.TryCast | exp.Alias | exp.Hex | exp.Upper | exp.Lower):
            inner = self.size(node.this)
            return inner * 2 if isinstance(node, exp.Hex) else inner
        if isinstance(node, exp.Repeat):
            return self.size(node.this) * _size_argument("repeat", node.args.get("times"))
        if isinstance(node, exp.Pad):
            width = _size_argument("lpad" if node.args.get("is_left") else "rpad", node.expression)
            return max(width * 4, self.size(node.this))  # characters, up to 4 bytes each
        if isinstance(node, exp.Space):
            return _size_argument("space", node.this)
        if isinstance(node, exp.DPipe | exp.Concat | exp.ConcatWs):
            parts = [node.this, node.expression] if isinstance(node, exp.DPipe) else node.expressions
            return sum(self.size(p) for p in parts)
        if isinstance(node, exp.Replace):
            pattern = max(self.size(node.expression), 1)
            replacement = self.size(node.args.get("replacement"))
            return self.size(node.this) * max(1, -(-replacement // pattern))
        if isinstance(node, exp.Stuff):
            return self.size(node.this) + self.size(node.expression)
        if isinstance(node, exp.Format):
            return self._printf("format", node.this, node.expressions)
        if isinstance(node, exp.Anonymous):
            return self._anonymous(node)
        return UNKNOWN_TEXT_BYTES

    def _anonymous(self, node: exp.Anonymous) -> int:
        name = str(node.this).lower()
        args = node.expressions
        if name in ("zeroblob", "randomblob"):
            return _size_argument(name, args[0] if args else None)
        if name in ("repeat", "replicate"):
            return self.size(args[0] if args else None) * _size_argument(name, args[1] if len(args) > 1 else None)
        if name == "space":
            return _size_argument(name, args[0] if args else None)
        if name == "printf":
            return self._printf(name, args[0] if args else None, args[1:])
        if name == "array_fill":
            count = 1
            for dims in args[1:2]:
                for dim in dims.expressions if isinstance(dims, exp.Array) else [dims]:
                    count *= _size_argument(name, dim)
            return count * max(self.size(args[0] if args else None), 1)
        return UNKNOWN_TEXT_BYTES

    def _printf(self, name: str, template: exp.Expr | None, args: list[exp.Expr]) -> int:
        # SQLite may read a double-quoted format string as an identifier; both are text here.
        text: str | None = None
        if isinstance(template, exp.Literal) and template.is_string:
            text = str(template.this)
        elif isinstance(template, exp.Column) and isinstance(template.this, exp.Identifier) and template.this.quoted:
            text = str(template.this.this)
        if text is None:
            if name == "format" and not args:
                return UNKNOWN_TEXT_BYTES  # MySQL FORMAT(number, decimals) and the like
            raise _deny(
                f"the format of {name}(...) is not a literal string",
                f"write the format as a literal: its widths decide how large the value gets (at most {MAX_BUILT_BYTES:,} bytes)",
            )
        total = len(text.encode())
        position = 0
        for match in _SPEC.finditer(text):
            if match.group(0) == "%%":
                continue
            widths = 0
            for part in (match.group(2), match.group(3)):
                if part is None:
                    continue
                if part.startswith("*"):
                    widths += _size_argument(name, args[position] if position < len(args) else None)
                    position += 1
                else:
                    widths += int(part)
            value = args[position] if position < len(args) else None
            position += 1
            total += widths + (self.size(value) if value is not None else 0)
        return total


def _series_span(node: exp.Expr) -> int | None:
    start, end = _constant(node.args.get("start")), _constant(node.args.get("end"))
    step = _constant(node.args.get("step")) if node.args.get("step") is not None else 1
    if start is None or end is None or not step:
        return None  # dates, expressions: bounded by the row cap and the timeout
    return max((end - start) // step + 1, 0)


def _literal_bytes(node: exp.Expr | None) -> int | None:
    """The size of a text made of literals only (through ||, concat, casts); None otherwise."""
    if node is None:
        return 0
    if isinstance(node, exp.Paren | exp.Cast | exp.TryCast | exp.Upper | exp.Lower):
        return _literal_bytes(node.this)
    if isinstance(node, exp.Literal | exp.HexString | exp.Null):
        return _Sizer().size(node)
    if isinstance(node, exp.DPipe | exp.Concat | exp.ConcatWs):
        parts = [node.this, node.expression] if isinstance(node, exp.DPipe) else node.expressions
        sizes = [_literal_bytes(p) for p in parts]
        return None if None in sizes else sum(s for s in sizes if s is not None)
    return None


def _bounded_needle(node: exp.StrPosition) -> None:
    """instr/LOCATE/POSITION look for the needle at every position of the haystack,
    comparing naively and uninterrupted (SQLite, MariaDB): the cost is haystack x needle,
    and a haystack can be a 16 MiB value. The needle must be a literal of at most
    MAX_NEEDLE_BYTES."""
    needle = node.args.get("substr")
    if needle is None:
        return
    size = _literal_bytes(needle)
    if size is None:
        raise _deny(
            f"the text searched for by instr/LOCATE/POSITION/strpos is not a literal ({needle.sql()[:80]})",
            f"search for a literal text of at most {MAX_NEEDLE_BYTES:,} bytes: sqlgate cannot bound a "
            "search whose needle comes from a column, a parameter or a subquery",
        )
    if size > MAX_NEEDLE_BYTES:
        raise _deny(
            f"the text searched for by instr/LOCATE/POSITION/strpos is {size:,} bytes",
            f"the limit is {MAX_NEEDLE_BYTES:,} bytes",
        )


def check_cost(statement: exp.Expr) -> None:
    """Deny a statement whose value builders or series exceed the caps above."""
    sizer: _Sizer | None = None
    for node in statement.walk():
        if isinstance(node, exp.GenerateSeries | exp.ExplodingGenerateSeries):
            span = _series_span(node)
            if span is not None and span > MAX_SERIES:
                raise _deny(
                    f"generate_series would produce {span:,} values",
                    f"the limit is {MAX_SERIES:,} values per series; narrow the range or raise the step",
                )
            continue
        if isinstance(node, exp.StrPosition):
            _bounded_needle(node)
        # replace() and hex() build too: nested, they multiply ('x' ten times per level).
        builder = isinstance(node, exp.Repeat | exp.Pad | exp.Space | exp.Format | exp.Replace | exp.Hex) or (
            isinstance(node, exp.Anonymous) and str(node.this).lower() in _BUILDERS
        )
        if not builder:
            continue
        if sizer is None:
            sizer = _Sizer()
        # The builder and every string expression around it (||, concat, replace, ...).
        top: exp.Expr = node
        while isinstance(top.parent, exp.DPipe | exp.Concat | exp.ConcatWs | exp.Replace | exp.Repeat | exp.Pad
                         | exp.Stuff | exp.Hex | exp.Paren | exp.Upper | exp.Lower) or (
            isinstance(top.parent, exp.Anonymous) and str(top.parent.this).lower() in _BUILDERS
        ):
            top = top.parent
        size = sizer.size(top)
        if size > MAX_BUILT_BYTES:
            name = str(node.this).lower() if isinstance(node, exp.Anonymous) else node.key
            raise _too_big(name, size)


class _Judged(Protocol):
    @property
    def inner(self) -> exp.Expr: ...


def bounded_cost(subject: _Judged) -> None:
    """The pipeline rule (``safety.pipeline.RULES``): no value builder past its cap."""
    check_cost(subject.inner)
