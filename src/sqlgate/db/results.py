"""Turning driver values into JSON-safe values, in one documented way.

| database value                  | JSON value                                              |
|---------------------------------|---------------------------------------------------------|
| NULL, bool, int, str            | as is                                                   |
| float                           | number; NaN and ±Infinity become the strings "NaN", ... |
| Decimal (NUMERIC, DECIMAL)      | number when it has at most 15 significant digits (exact |
|                                 | as a double), otherwise a string with every digit       |
| date, datetime, time            | ISO 8601 string (``2024-01-31``, ``2024-01-31T12:00:00+00:00``) |
| PostgreSQL ±infinity dates      | ``"infinity"``, ``"-infinity"``                         |
| interval (timedelta)            | ISO 8601 duration string, e.g. ``P1DT2H3M4.5S``         |
| UUID, IP address/network        | string                                                  |
| bytes (BYTEA, BLOB, BINARY)     | ``"base64:<base64 text>"``                              |
| JSON/JSONB (PostgreSQL)         | the parsed JSON value; MySQL/SQLite JSON columns arrive |
|                                 | as text and stay strings                                |
| arrays                          | lists, converted element by element                     |
| BIT/VARBIT (PostgreSQL)         | the bits as a string, ``"1011"``                        |
| ranges                          | PostgreSQL's text form, ``"[1,10)"``, ``"empty"``        |
| records (ROW(...))              | lists, converted element by element                     |
| anything else                   | its string form                                         |
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import pydantic_core

_SIMPLE = (str, int, bool, type(None))
# Values that go to JSON as they are, whatever their size (a text is checked for its length).
_PLAIN = frozenset({int, bool, type(None)})
_SIZED = (str, bytes, bytearray)  # values a raw row's size counts by their length


def to_json_safe(value: Any) -> Any:
    if isinstance(value, _SIMPLE):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, dt.datetime | dt.date):
        return _date_text(value)
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "base64:" + base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json_safe(v) for v in value]
    return _text_form(value)


def _text_form(value: Any) -> str:
    """The database's own text form of a value of another type. asyncpg's BitString and
    Range print as their repr (``<BitString 1011>``, ``<Range [1, 10)>``): written here as
    PostgreSQL writes them (``1011``, ``[1,10)``)."""
    kind = type(value).__name__
    if kind == "BitString" and hasattr(value, "as_string"):
        return str(value.as_string())
    if kind == "Range" and hasattr(value, "isempty"):
        if value.isempty:
            return "empty"
        lower = "" if value.lower is None else to_json_safe(value.lower)
        upper = "" if value.upper is None else to_json_safe(value.upper)
        return f"{'[' if value.lower_inc else '('}{lower},{upper}{']' if value.upper_inc else ')'}"
    return str(value)


# A driver's stand-ins for values Python's dates cannot hold (asyncpg decodes PostgreSQL's
# 'infinity' timestamps and dates as datetime.max-like objects): by identity, since a real
# 9999-12-31 23:59:59.999999 equals them. Registered by the dialect (register_infinite).
_INFINITE: dict[int, tuple[object, str]] = {}


def register_infinite(value: object, text: str) -> None:
    """Show the driver's singleton ``value`` as ``text`` (``"infinity"``) in results."""
    _INFINITE[id(value)] = (value, text)


def _date_text(value: dt.date) -> str:
    infinite = _INFINITE.get(id(value))
    return infinite[1] if infinite is not None and infinite[0] is value else value.isoformat()


def _decimal(value: Decimal) -> Any:
    short = _short_decimal(value)
    return short if short is not None else _general_decimal(value)


def _general_decimal(value: Decimal) -> Any:
    """The documented rule, for any decimal: a number when at most 15 significant digits
    (an int when integral with a non-negative exponent), else the exact string."""
    if not value.is_finite():
        return str(value)
    parts = value.as_tuple()
    if len(parts.digits) <= 15:
        as_int = int(value)
        if value == as_int and isinstance(parts.exponent, int) and parts.exponent >= 0:
            return as_int
        return float(value)
    return str(value)


def _short_decimal(value: Decimal) -> int | float | None:
    """The common decimal, quickly: a finite one written in at most 15 characters without
    an exponent (so at most 15 significant digits) is an int when it has no point, else a
    float, as ``_general_decimal`` decides; None for any other."""
    text = str(value)
    if len(text) > 15 or "E" in text or not value.is_finite():
        return None
    return float(text) if "." in text else int(text)


def iso_duration(delta: dt.timedelta) -> str:
    """``delta`` as an ISO 8601 duration, exact to the microsecond (``PT0.000001S``, never
    ``PT1e-06S``; a fraction is never rounded up into ``60S``)."""
    sign = "-" if delta < dt.timedelta(0) else ""
    delta = abs(delta)
    days = delta.days
    hours, rest = divmod(delta.seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = f"{sign}P{days}D" if days else f"{sign}P"
    time_part = ""
    if hours:
        time_part += f"{hours}H"
    if minutes:
        time_part += f"{minutes}M"
    if delta.microseconds:
        time_part += f"{secs}.{delta.microseconds:06d}".rstrip("0") + "S"
    elif secs or not (days or hours or minutes):
        time_part += f"{secs}S"
    return out + ("T" + time_part if time_part else "")


# The first fetch of a result whose row width is unknown takes this many rows; later
# fetches are sized from the widest row seen so far to fill what is left of the budget.
FIRST_CHUNK_ROWS = 8
MAX_CHUNK_ROWS = 1000
# What a value that is not text, bytes or JSON counts toward a row's size before converting.
_SCALAR_BYTES = 24
_MARKER = "…[sqlgate: cut at {limit} bytes; {more} more {unit}]"
# Converters of common non-JSON types whose result is never None and at most 40
# characters (never cut under a max_value_bytes of 64 or more); None from one means "not
# the short case" (a long decimal) and the value takes the general path (``_value``).
_SHORT: dict[type, Any] = {
    Decimal: _short_decimal, dt.datetime: _date_text, dt.date: _date_text, dt.time: dt.time.isoformat,
    uuid.UUID: str,
}
_SHORT_MIN_VALUE_BYTES = 64


class RowBudget:
    """Rows converted and sized as they arrive, up to ``max_rows`` rows and
    ``max_bytes`` of serialized JSON, with every value cut at ``max_value_bytes``.

    A dialect's fetch loop asks ``chunk()`` how many rows to fetch next and hands them
    to ``take()``, which returns False once nothing more is wanted (the row cap was
    passed, or the byte budget is spent): the fetch stops there and the statement is
    closed. So at most one chunk of raw rows is held beside the kept, converted rows,
    and a chunk is sized to what the budget has left (``docs/limits.md``).
    """

    __slots__ = (
        "max_bytes", "max_rows", "max_value_bytes", "more", "rows", "truncated_by", "truncated_values",
        "used", "widest",
    )

    def __init__(self, max_rows: int, max_bytes: int, max_value_bytes: int) -> None:
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_value_bytes = max_value_bytes
        self.rows: list[list[Any]] = []
        self.used = 0
        self.widest = 0  # the widest raw row seen, in approximate bytes
        self.truncated_by: str | None = None
        self.truncated_values = 0
        self.more = False  # the database had rows beyond the ones kept

    def reset(self) -> None:
        """Forget the rows kept (the statement runs again); the widest row seen stays."""
        self.rows = []
        self.used = self.truncated_values = 0
        self.truncated_by = None
        self.more = False

    @property
    def full(self) -> bool:
        return self.truncated_by is not None

    def chunk(self, first: int = FIRST_CHUNK_ROWS) -> int:
        """How many rows to fetch next (one more than the cap, to see whether there are more)."""
        left = self.max_rows + 1 - len(self.rows)
        if not self.widest:
            return max(1, min(left, first))
        room = max(self.max_bytes - self.used, 0)
        return max(1, min(left, MAX_CHUNK_ROWS, room // self.widest + 1))

    def take(self, rows: Iterable[Sequence[Any]]) -> bool:
        """Keep ``rows`` while they fit; False once the result is complete or cut."""
        if self.truncated_by is not None:
            return False
        rows = rows if isinstance(rows, list) else list(rows)
        if rows and self._take_whole(rows):
            return self.truncated_by is None
        return self._take_each(rows)

    def _take_each(self, rows: list[Sequence[Any]]) -> bool:
        for row in rows:
            if len(self.rows) >= self.max_rows:
                self.more = True
                self.truncated_by = "max_rows"
                return False
            self.widest = max(self.widest, _raw_size(row))
            cut_before = self.truncated_values
            converted = [self._value(v) for v in row]
            size = _json_size(converted)
            if size > self.max_bytes and not self.rows:
                # The first row is always an answer: its values are cut further to fit.
                per_value = max(64, (self.max_bytes - 96 * len(converted)) // max(len(converted), 1))
                self.truncated_values = cut_before
                converted = [self._value(v, per_value) for v in row]
                size = _json_size(converted)
            if self.rows and self.used + size > self.max_bytes:
                self.truncated_values = cut_before  # this row is not returned
                self.more = True
                self.truncated_by = "max_result_bytes"
                return False
            self.used += size
            self.rows.append(converted)
        return True

    def _take_whole(self, rows: list[Sequence[Any]]) -> bool:
        """The common case in one go: every row of the chunk (up to the row cap) fits what
        is left of the byte budget. Plain values pass as they are, the chunk is sized by one
        serialisation; False (nothing kept) when it does not fit: ``take`` goes row by row."""
        room = self.max_rows - len(self.rows)
        if room <= 0:
            return False
        batch = rows if len(rows) <= room else rows[:room]
        plain, quarter, value, finite = _PLAIN, self.max_value_bytes // 4, self._value, math.isfinite
        short = _SHORT if self.max_value_bytes >= _SHORT_MIN_VALUE_BYTES else {}
        cut_before = self.truncated_values
        converted = [
            [
                v if (t := type(v)) in plain or (t is str and len(v) <= quarter) or (t is float and finite(v))
                else c if (f := short.get(t)) is not None and (c := f(v)) is not None
                else value(v)
                for v in row
            ]
            for row in batch
        ]
        size = len(pydantic_core.to_json(converted, fallback=str)) - 1  # = the sum of _json_size per row
        if self.used + size > self.max_bytes:
            self.truncated_values = cut_before
            return False
        self.widest = max(self.widest, _widest(batch))
        self.used += size
        self.rows.extend(converted)
        if len(batch) < len(rows):
            self.more = True
            self.truncated_by = "max_rows"
        return True

    def _value(self, value: Any, limit: int | None = None) -> Any:
        limit = self.max_value_bytes if limit is None else min(limit, self.max_value_bytes)
        if isinstance(value, str):
            converted: Any = value
            cut = cut_text(value, limit)
        elif type(value) in _SIMPLE:
            return value
        elif isinstance(value, bytes | bytearray | memoryview):
            cut = _cut_bytes(value if isinstance(value, bytes) else bytes(value), limit)
            converted = None if cut is not None else to_json_safe(value)
        else:
            converted = to_json_safe(value)
            if isinstance(converted, str):
                cut = cut_text(converted, limit)
            elif isinstance(converted, dict | list):
                text = json.dumps(converted, ensure_ascii=False, separators=(",", ":"))
                # too big: its JSON text, cut (a string now)
                cut = None if len(text) * 4 <= limit or len(text.encode()) <= limit else cut_text(text, limit)
            else:
                return converted
        if cut is None:
            return converted
        self.truncated_values += 1
        return cut


class LongText(str):
    """The start of a text the database cut (db/dialects/postgres.py ``pg_bounded``), with
    the full text's length in characters: the marker counts what was left out."""

    total: int

    def __new__(cls, head: str, total: int) -> LongText:
        text = super().__new__(cls, head)
        text.total = total
        return text


class LongBytes(bytes):
    """The start of a binary value the database cut, with its full length in bytes."""

    total: int

    def __new__(cls, head: bytes, total: int) -> LongBytes:
        data = super().__new__(cls, head)
        data.total = total
        return data


def cut_text(text: str, limit: int) -> str | None:
    """``text`` cut to at most ``limit`` UTF-8 bytes plus a visible marker; None if it fits."""
    total = text.total if isinstance(text, LongText) else len(text)
    if len(text) * 4 <= limit and total == len(text):
        return None
    head = text[:limit]
    encoded = head.encode("utf-8")
    if len(head) == total and len(encoded) <= limit:
        return None
    if len(encoded) > limit:
        head = encoded[:limit].decode("utf-8", "ignore")
    return head + _MARKER.format(limit=limit, more=total - len(head), unit="characters")


def _cut_bytes(data: bytes, limit: int) -> str | None:
    total = data.total if isinstance(data, LongBytes) else len(data)
    if total * 4 // 3 + 10 <= limit:
        return None
    keep = max((limit - 7) * 3 // 4, 0)
    head = "base64:" + base64.b64encode(data[:keep]).decode("ascii")
    return head + _MARKER.format(limit=limit, more=total - keep, unit="bytes")


def _raw_size(row: Sequence[Any]) -> int:
    size = 2
    for value in row:
        if isinstance(value, _SIZED):
            size += len(value) + 3
        else:
            size += _SCALAR_BYTES
    return size


def _widest(rows: list[Sequence[Any]]) -> int:
    """At least the widest ``_raw_size`` of ``rows`` (exact for one column), a column at a
    time: the sum of each column's widest value."""
    if len(set(map(len, rows))) > 1:  # rows of different lengths (no driver makes them)
        return max(map(_raw_size, rows))
    width = 2
    for column in zip(*rows, strict=True):
        kinds = set(map(type, column))
        if not any(issubclass(kind, _SIZED) for kind in kinds):
            width += _SCALAR_BYTES
        elif kinds <= _TEXT_OR_NONE:
            widest = max(map(len, filter(None, column)), default=0) + 3
            width += max(widest, _SCALAR_BYTES) if _NONE in kinds else widest
        else:
            width += max(len(v) + 3 if isinstance(v, _SIZED) else _SCALAR_BYTES for v in column)
    return width


_NONE = type(None)
_TEXT_OR_NONE = frozenset({str, bytes, LongText, LongBytes, _NONE})


def _json_size(row: list[Any]) -> int:
    """A converted row's share of the budget: its UTF-8 JSON bytes and a separator."""
    return len(pydantic_core.to_json(row, fallback=str)) + 1


def convert_rows(
    rows: Iterable[Sequence[Any]], max_bytes: int, max_value_bytes: int = 64 * 1024
) -> tuple[list[list[Any]], bool]:
    """JSON-safe rows under a ``RowBudget`` without a row cap: the rows and whether the
    byte budget cut the result."""
    budget = RowBudget(1 << 62, max_bytes, max_value_bytes)
    budget.take(rows)
    return budget.rows, budget.truncated_by == "max_result_bytes"
