"""The dialect registry: one module per database family, found by canonical name."""

from __future__ import annotations

from sqlgate.db.dialects.base import ISOLATION_LEVELS, Driver, RawResult, bind, timeout_error
from sqlgate.db.dialects.mysql import MySQLDriver, mysql_literal
from sqlgate.db.dialects.postgres import PostgresDriver, pg_param, pg_prepare
from sqlgate.db.dialects.sqlite import SQLiteDriver, sqlite_deadline

DRIVERS: dict[str, type[Driver]] = {
    "postgresql": PostgresDriver,
    "mysql": MySQLDriver,
    "sqlite": SQLiteDriver,
}

__all__ = [
    "DRIVERS", "ISOLATION_LEVELS", "Driver", "MySQLDriver", "PostgresDriver", "RawResult", "SQLiteDriver",
    "bind", "mysql_literal", "pg_param", "pg_prepare", "sqlite_deadline", "timeout_error",
]
