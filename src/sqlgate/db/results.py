"""Turning driver values into JSON-safe values, in one documented way.

| database value                  | JSON value                                              |
|---------------------------------|---------------------------------------------------------|
| NULL, bool, int, str            | as is                                                   |
| float                           | number; NaN and ±Infinity become the strings "NaN", ... |
| Decimal (NUMERIC, DECIMAL)      | number when it has at most 15 significant digits (exact |
|                                 | as a double), otherwise a string with every digit       |
| date, datetime, time            | ISO 8601 string (``2024-01-31``, ``2024-01-31T12:00:00+00:00``) |
| interval (timedelta)            | ISO 8601 duration string, e.g. ``P1DT2H3M4.5S``         |
| UUID, IP address/network        | string                                                  |
| bytes (BYTEA, BLOB, BINARY)     | ``"base64:<base64 text>"``                              |
| JSON/JSONB (PostgreSQL)         | the parsed JSON value; MySQL/SQLite JSON columns arrive |
|                                 | as text and stay strings                                |
| arrays                          | lists, converted element by element                     |
| ranges, records, anything else  | its string form                                         |
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

_SIMPLE = (str, int, bool, type(None))


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
    if isinstance(value, dt.datetime | dt.date | dt.time):
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
    return str(value)


def _decimal(value: Decimal) -> Any:
    if not value.is_finite():
        return str(value)
    parts = value.as_tuple()
    if len(parts.digits) <= 15:
        as_int = int(value)
        if value == as_int and isinstance(parts.exponent, int) and parts.exponent >= 0:
            return as_int
        return float(value)
    return str(value)


def iso_duration(delta: dt.timedelta) -> str:
    sign = "-" if delta < dt.timedelta(0) else ""
    delta = abs(delta)
    days = delta.days
    seconds = delta.seconds + delta.microseconds / 1_000_000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = f"{sign}P{days}D" if days else f"{sign}P"
    time_part = ""
    if hours:
        time_part += f"{int(hours)}H"
    if minutes:
        time_part += f"{int(minutes)}M"
    if secs or not (days or hours or minutes):
        time_part += f"{secs:g}S"
    return out + ("T" + time_part if time_part else "")


def convert_rows(
    rows: Iterable[Sequence[Any]], max_bytes: int
) -> tuple[list[list[Any]], bool]:
    """JSON-safe rows, stopping before the serialized rows would exceed ``max_bytes``.

    Returns the rows and whether the byte budget cut the result. The first row is
    always kept (a single huge row is still an answer).
    """
    out: list[list[Any]] = []
    used = 0
    for row in rows:
        converted = [v if type(v) in _SIMPLE else to_json_safe(v) for v in row]
        size = len(json.dumps(converted, ensure_ascii=False, separators=(",", ":"))) + 1
        if out and used + size > max_bytes:
            return out, True
        used += size
        out.append(converted)
    return out, False
