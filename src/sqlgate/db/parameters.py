"""Parameter values checked before any driver sees them (dialect-neutral).

Agents send parameter values as JSON. Some JSON decodes to values no database takes, and a
driver then fails with a message about its own internals (``DB_ERROR "the database
rejected ..."``). These are refused here as ``INVALID_ARGUMENT`` naming the parameter and
the type expected:

* numbers that are not finite (``1e400`` decodes to infinity, ``NaN``);
* integers beyond 64 bits (``10**30``): no driver binds them as integers (pass a string
  for a NUMERIC/DECIMAL column);
* text that is not Unicode: lone surrogates (``"\\ud800"``) cannot be encoded as UTF-8;
* objects and arrays holding any of those, or nested deeper than ``MAX_DEPTH``.

Type checks that need the statement's parameter types live in each dialect's coercion
(PostgreSQL knows them from the prepared statement: ``pg_param``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from sqlgate.errors import InvalidArgument

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


def describe(value: Any) -> str:
    """A short, safe rendering of a value for an error message."""
    if isinstance(value, str):
        shown = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value[:40])
        return repr(shown) + ("…" if len(value) > 40 else "")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**20:
        return f"an integer of {len(str(abs(value))) if abs(value) < 10**4000 else 'over 4000'} digits"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return repr(value)[:40]


def check_values(params: dict[str, Any]) -> None:
    """Refuse any value no database can take (see the module docstring)."""
    for name, value in params.items():
        problem = _problem(value, 0)
        if problem is not None:
            what, expected = problem
            raise InvalidArgument(
                f"parameter :{name}: {what}; expected {expected}",
                f"pass {expected} for :{name}",
            )


def _problem(value: Any, depth: int) -> tuple[str, str] | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return None
        return (f"{describe(value)} is out of the 64-bit integer range",
                "an integer between -9223372036854775808 and 9223372036854775807 (or a decimal string)")
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return (f"{value!r} is not a finite number (1e400 and beyond decode to infinity)",
                "a finite number")
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found is None:
            return None
        return (f"the text holds a lone surrogate (\\u{ord(found.group()):04x}) at position {found.start()}, "
                "which is not Unicode", "text that is valid Unicode (UTF-8)")
    if depth >= MAX_DEPTH:
        return (f"the value nests deeper than {MAX_DEPTH} levels", "a flatter JSON value")
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _problem(key, depth + 1) or _problem(item, depth + 1)
            if problem is not None:
                return (f"in the object: {problem[0]}", problem[1])
        return None
    if isinstance(value, list):
        for item in value:
            problem = _problem(item, depth + 1)
            if problem is not None:
                return (f"in the array: {problem[0]}", problem[1])
        return None
    return (f"{type(value).__name__} values are not supported", "a JSON scalar, array or object")
