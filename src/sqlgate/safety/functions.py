"""Functions that are never allowed through sqlgate; the lists live in each dialect's
safety profile (``safety/profiles/<dialect>.py``, ``SafetyProfile.denied_functions``).

A function is denied when it has side effects, touches files, the network or other
processes, changes session or server state, runs SQL given as text (which would bypass
the table whitelist), reads other sessions' activity, or can stall the server. The lists
come from each database's function reference (PostgreSQL "System Administration
Functions", "Large Objects", dblink/adminpack/pg_prewarm docs; MySQL/MariaDB "Locking",
"Miscellaneous" and "Information" functions; SQLite core functions and the fileio, zipfile
and pragma table-valued functions). Names ending in ``*`` are prefixes.

A policy can add names (``denied_functions``) or lift a built-in denial
(``allowed_functions``; an exact name, which also lifts a matching prefix entry).
Names are compared lower-cased whatever the quoting, and whatever schema qualifies the
call (``pg_catalog.pg_sleep(1)`` is ``pg_sleep``). User-defined functions are not
denied here: on a read_only database the database refuses their writes (read-only
transactions), and the least-privilege role in the README limits what they can reach.
"""

from __future__ import annotations

from functools import lru_cache

from sqlglot import exp

from sqlgate.errors import PolicyViolation
from sqlgate.safety import profiles
from sqlgate.safety.profiles import SafetyProfile

# sqlglot parses some of these into typed nodes rather than Anonymous calls.
_TYPED_NAMES: dict[type[exp.Expr], str] = {}
for _cls_name, _fn in (("Sleep", "sleep"), ("LastInsertId", "last_insert_id")):
    if hasattr(exp, _cls_name):
        _TYPED_NAMES[getattr(exp, _cls_name)] = _fn


def function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    typed = _TYPED_NAMES.get(type(node))
    if typed:
        return typed
    return node.sql_name().lower()


def _split(names: frozenset[str] | set[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    exact = frozenset(n for n in names if not n.endswith("*"))
    prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
    return exact, prefixes


@lru_cache(maxsize=256)
def _deny_rules(profile: SafetyProfile, allowed: tuple[str, ...], denied: tuple[str, ...]) -> tuple[
    frozenset[str], tuple[str, ...], frozenset[str]
]:
    """(exact names, prefixes, lifted names) for one dialect and policy."""
    names = set(profile.denied_functions) | {d.lower().strip() for d in denied}
    lifted = frozenset(a.lower().strip() for a in allowed)
    exact, prefixes = _split(names - lifted)
    return exact, prefixes, lifted


def is_denied(
    name: str, dialect: str | SafetyProfile, allowed: tuple[str, ...] = (), denied: tuple[str, ...] = ()
) -> bool:
    exact, prefixes, lifted = _deny_rules(profiles.get(dialect), allowed, denied)
    if name in lifted:
        return False
    return name in exact or name.startswith(prefixes)


def check_functions(
    statement: exp.Expr,
    dialect: str | SafetyProfile,
    allowed: tuple[str, ...],
    denied: tuple[str, ...],
) -> None:
    exact, prefixes, lifted = _deny_rules(profiles.get(dialect), allowed, denied)
    for node in statement.find_all(exp.Func):
        name = function_name(node)
        if name in lifted:
            continue
        if name in exact or (prefixes and name.startswith(prefixes)):
            raise PolicyViolation(
                f"function {name}() is not allowed",
                "it has side effects, reaches outside the database or can stall it; rewrite "
                "the query without it (an operator can lift this with allowed_functions)",
                code="FUNCTION_NOT_ALLOWED",
            )
