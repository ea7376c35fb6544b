"""The safety profile registry: one profile per dialect family, found by name or URL scheme.

``get`` accepts the canonical names (``postgresql``, ``mysql``, ``sqlite``) and the aliases
callers use today (sqlglot's ``postgres``, ``mariadb``); anything else is refused — there is
no default profile. ``for_url`` maps a database URL to its profile from the scheme alone
(pure string work), so ``settings`` can refuse an unregistered dialect when it loads.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from sqlgate.errors import ConfigError, PolicyViolation
from sqlgate.safety.profiles import mysql, postgresql, sqlite
from sqlgate.safety.profiles.base import ExplainSyntax, IdentifierCase, SafetyProfile, TextGuard

PROFILES: dict[str, SafetyProfile] = {
    profile.name: profile for profile in (postgresql.PROFILE, mysql.PROFILE, sqlite.PROFILE)
}


def _index() -> tuple[dict[str, SafetyProfile], dict[str, SafetyProfile]]:
    by_name: dict[str, SafetyProfile] = {}
    by_scheme: dict[str, SafetyProfile] = {}
    for profile in PROFILES.values():
        for name in (profile.name, profile.sqlglot_dialect, *profile.aliases):
            if by_name.setdefault(name, profile) is not profile:
                raise RuntimeError(f"dialect name {name!r} registered twice")  # pragma: no cover
        for scheme in profile.url_schemes:
            if by_scheme.setdefault(scheme, profile) is not profile:
                raise RuntimeError(f"URL scheme {scheme!r} registered twice")  # pragma: no cover
    return by_name, by_scheme


_BY_NAME, _BY_SCHEME = _index()


def names() -> tuple[str, ...]:
    """The canonical dialect names, sorted."""
    return tuple(sorted(PROFILES))


def accepted_names() -> tuple[str, ...]:
    """Every name ``get`` accepts (canonical names and aliases), sorted."""
    return tuple(sorted(_BY_NAME))


def url_schemes() -> tuple[str, ...]:
    """Every URL scheme ``for_url`` accepts, sorted."""
    return tuple(sorted(_BY_SCHEME))


def get(dialect: str | SafetyProfile) -> SafetyProfile:
    """The profile for a dialect name (canonical or alias, any case); a profile passes through.

    An unknown name raises ``PolicyViolation`` (code ``PARSE_ERROR``, as ``check`` always
    reported it): no dialect silently gets an empty rule set.
    """
    if isinstance(dialect, SafetyProfile):
        return dialect
    profile = _BY_NAME.get(dialect) or _BY_NAME.get(dialect.lower())
    if profile is None:
        raise PolicyViolation(
            f"unknown SQL dialect {dialect!r}",
            f"use one of: {', '.join(names())}",
            code="PARSE_ERROR",
        )
    return profile


def for_policy(profile: SafetyProfile, exact_table_names: bool) -> SafetyProfile:
    """``profile`` as one database uses it: with ``exact_table_names`` (MySQL/MariaDB
    ``lower_case_table_names=0``, read at connect) table and schema names compare exactly."""
    if not exact_table_names or profile.identifier_case is IdentifierCase.EXACT:
        return profile
    return _exact_variant(profile)


@lru_cache(maxsize=16)
def _exact_variant(profile: SafetyProfile) -> SafetyProfile:
    # One variant object per profile: the caches keyed by profile identity stay warm.
    return replace(profile, identifier_case=IdentifierCase.EXACT)


def scheme_of(url: str) -> str:
    """The scheme of a database URL, lower-cased, driver suffix kept (``postgresql+asyncpg``)."""
    scheme, sep, _ = url.partition(":")
    return scheme.strip().lower() if sep else ""


def for_scheme(scheme: str) -> SafetyProfile:
    """The profile for a URL scheme; an unregistered scheme raises ``ConfigError``."""
    profile = _BY_SCHEME.get(scheme.lower())
    base, plus, suffix = scheme.lower().partition("+")
    if profile is None and plus and base in _BY_SCHEME:
        raise ConfigError(
            f"unsupported database URL scheme {scheme!r} (driver {suffix!r}): write {base}:// "
            "(sqlgate picks its own async driver)",
            "use postgresql://user:pass@host/db, mysql://user@host/db (also MariaDB/TiDB) or sqlite:///path.db "
            "(docs/connecting.md)",
        )
    if profile is None:
        raise ConfigError(
            f"unsupported database URL scheme {scheme!r}",
            "use postgresql://user:pass@host/db, mysql://user@host/db (also MariaDB/TiDB) or "
            f"sqlite:///path.db; registered schemes: {', '.join(url_schemes())}",
        )
    return profile


def for_url(url: str) -> SafetyProfile:
    """The profile for a database URL, from its scheme alone (no parsing, no I/O)."""
    return for_scheme(scheme_of(url))


__all__ = [
    "PROFILES", "ExplainSyntax", "IdentifierCase", "SafetyProfile", "TextGuard", "accepted_names", "for_policy",
    "for_scheme",
    "for_url", "get", "names", "scheme_of", "url_schemes",
]
