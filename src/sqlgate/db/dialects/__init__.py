"""The dialect registry: one module per database family, found by canonical name or URL scheme.

Canonical names (``postgresql``, ``mysql``, ``sqlite``) are what every output says. An
unknown name or URL scheme is a ``ConfigError`` naming the supported ones, never a
silent default. URL schemes are resolved by the pure safety-profile registry
(``safety.profiles.for_scheme``), the same check ``settings`` runs when it loads, so the
two cannot disagree. Adding a dialect: see docs/adding-a-dialect.md.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

from sqlgate.db.dialects.base import (
    ISOLATION_LEVELS,
    BulkPlan,
    Counts,
    Dialect,
    RawResult,
    bind,
    template,
    timeout_error,
)
from sqlgate.db.dialects.mysql import MySQLDialect, mysql_literal
from sqlgate.db.dialects.postgres import PostgresDialect, pg_param, pg_prepare
from sqlgate.db.dialects.sqlite import SQLiteDialect, sqlite_deadline
from sqlgate.errors import ConfigError
from sqlgate.logging import mask_secrets
from sqlgate.safety import profiles

DIALECTS: dict[str, type[Dialect]] = {cls.name: cls for cls in (PostgresDialect, MySQLDialect, SQLiteDialect)}
URL_EXAMPLES = "postgresql://user:pass@host/db, mysql://user@host/db (also MariaDB/TiDB) or sqlite:///path.db"


def get(name: str) -> Dialect:
    """A new dialect object (one per configured database) for a canonical ``name``."""
    cls = DIALECTS.get(name)
    if cls is None:
        raise ConfigError(
            f"unknown database dialect {name!r}",
            f"sqlgate serves: {', '.join(DIALECTS)} (see docs/adding-a-dialect.md to add one)",
        )
    return cls()


def for_scheme(scheme: str) -> type[Dialect]:
    """The dialect class serving URL ``scheme`` (``postgres``, ``mariadb+aiomysql``, ...)."""
    name = profiles.for_scheme(scheme).name  # ConfigError for an unregistered scheme
    cls = DIALECTS.get(name)
    if cls is None:
        raise ConfigError(
            f"no database module serves dialect {name!r} (URL scheme {scheme!r})",
            f"sqlgate serves: {', '.join(DIALECTS)} (see docs/adding-a-dialect.md to add one)",
        )
    return cls


def parse_url(url: str | URL) -> URL:
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except Exception as exc:
        raise ConfigError(f"not a database URL: {mask_secrets(url)}", f"use {URL_EXAMPLES}") from exc


def for_url(url: str | URL) -> Dialect:
    """A new dialect object for a database URL, as its options ask (a transaction pooler);
    ConfigError for an unknown scheme."""
    parsed = parse_url(url)
    return for_scheme(parsed.drivername)().configured(parsed)


def check_url(url: str | URL) -> URL:
    """The async URL for ``url``, or a one-line ``ConfigError`` with the fix for a URL that
    cannot work (no database name, ``sqlite://x.db``, a misspelled ``sslmode``, an
    unreadable CA file, an unknown driver suffix). Start-up runs it on every URL."""
    parsed = async_url(url)
    for_scheme(parsed.drivername)().validate_url(parsed)
    return parsed


def _register_sqlalchemy_dialects() -> None:
    # SQLAlchemy's asyncpg/aiomysql dialects, extended to read the URL's TLS and pooler
    # options (postgres.py, mysql.py): every engine made from a URL gets them.
    from sqlalchemy.dialects import registry

    registry.register("postgresql.asyncpg", "sqlgate.db.dialects.postgres", "SqlgateAsyncpgDialect")
    registry.register("mysql.aiomysql", "sqlgate.db.dialects.mysql", "SqlgateAiomysqlDialect")
    registry.register("mariadb.aiomysql", "sqlgate.db.dialects.mysql", "SqlgateAiomysqlDialect")


_register_sqlalchemy_dialects()


def async_url(url: str | URL) -> URL:
    """Map a plain database URL to sqlgate's async driver for it."""
    parsed = parse_url(url)
    return parsed.set(drivername=for_scheme(parsed.drivername).async_driver)


__all__ = [
    "DIALECTS", "ISOLATION_LEVELS", "BulkPlan", "Counts", "Dialect", "MySQLDialect",
    "PostgresDialect", "RawResult", "SQLiteDialect", "async_url", "bind", "check_url", "for_scheme", "for_url", "get",
    "mysql_literal", "parse_url", "pg_param", "pg_prepare", "sqlite_deadline", "template", "timeout_error",
]
