"""``sqlgate grants``: print the least-privilege role DDL for each configured database.

The role follows the policy: SELECT on the whitelisted tables only, column grants that
leave out ``denied_columns``, read-only by default (write privileges only for read_write
policies), the policy's statement timeout and a connection limit sized to the pool. Run
the printed SQL as an administrator, then point sqlgate's URL at the new role; the
``privileges`` section of ``health_check`` confirms the role reads nothing beyond the
policy. PostgreSQL and MySQL/MariaDB have roles; SQLite has none (the output says what
to do instead).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from sqlgate.arguments import add_settings_arguments, settings_from_args
from sqlgate.errors import InvalidArgument, SqlgateError

SQLITE_ADVICE = (
    "-- {name}: SQLite has no roles or grants. Keep the file readable only by sqlgate's user;\n"
    "-- for a read_only policy, sqlgate already opens it with PRAGMA query_only."
)


def add_command(sub: Any) -> None:
    grants = sub.add_parser(
        "grants", help="print the least-privilege role DDL (PostgreSQL, MySQL/MariaDB) for the configured policy",
        epilog="exit status: 0 printed, 2 a database could not be reached or the configuration is bad",
    )
    grants.add_argument("--role", help="role (user) name; default sqlgate_<database>_reader or _writer")
    grants.add_argument("--password", help="the role's password; default: a random one, printed in the DDL")
    grants.add_argument("--only", metavar="NAME", help="only this configured database")
    add_settings_arguments(grants)
    grants.set_defaults(func=cmd_grants)


def cmd_grants(args: argparse.Namespace) -> int:
    from sqlgate import logging as sqlgate_logging

    settings = settings_from_args(args)
    sqlgate_logging.configure(settings.log_level if getattr(args, "log_level", None) else "WARNING",
                              settings.log_format)
    try:
        text = asyncio.run(render(settings, role=args.role, password=args.password, only=args.only))
    except SqlgateError as error:
        sys.stderr.write(f"sqlgate grants: {error.message}; {error.hint}\n")
        return 2
    sys.stdout.write(text)
    return 0


async def render(settings: Any, *, role: str | None = None, password: str | None = None, only: str | None = None) -> str:
    """The DDL for every configured database (or ``only`` one), as one text."""
    from sqlgate.db import privileges
    from sqlgate.db.engines import Databases, create_database

    opened = []
    blocks: list[str] = []
    try:
        for config in settings.resolved_databases():
            if only and config.name != only:
                continue
            opened.append(create_database(config, settings))
        if not opened:
            raise InvalidArgument(f"no configured database is named {only!r}", "use a name from --database NAME=URL")
        for database in opened:
            suffix = "reader" if database.policy.read_only else "writer"
            plan = await privileges.grant_plan(
                database, role=role or f"sqlgate_{database.name}_{suffix}", password=password,
            )
            statements = database.driver.grant_statements(plan)
            if statements is None:
                blocks.append(SQLITE_ADVICE.format(name=database.name))
            else:
                blocks.append("\n".join(statements))
    finally:
        if opened:
            await Databases(opened).close()
    return "\n\n".join(blocks) + "\n"


__all__ = ["add_command", "cmd_grants", "render"]
