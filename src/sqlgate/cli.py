"""The ``sqlgate`` command: serve (default), check, and the commands later issues add.

Every setting has a flag, generated from ``Settings`` (``sqlgate.arguments``) so the two
cannot drift. The operator commands (health, migrate, call) live in ``sqlgate.commands``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from sqlgate import __version__
from sqlgate.arguments import add_settings_arguments, settings_from_args
from sqlgate.arguments import setting_flags as setting_flags  # the docs test reads it here
from sqlgate.commands import add_commands, check_configuration
from sqlgate.errors import ConfigError, SqlgateError


def cmd_serve(args: argparse.Namespace) -> int:
    from sqlgate import logging as sqlgate_logging
    from sqlgate.server.transports import run

    settings = settings_from_args(args)
    sqlgate_logging.configure(settings.log_level, settings.log_format)
    check_configuration(settings)  # URLs that cannot work, misspelled SQLGATE_* variables
    run(settings)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from sqlgate import safety
    from sqlgate.errors import ConfigError
    from sqlgate.safety import profiles
    from sqlgate.safety.policy import Policy
    from sqlgate.settings import check_policy_names

    policy_fields: dict[str, Any] = {"mode": args.mode or "read_only"}
    if args.allowed_tables is not None:
        policy_fields["allowed_tables"] = args.allowed_tables
    if args.allow_multi_statement:
        policy_fields["allow_multi_statement"] = True
    if args.default_schema:
        policy_fields["default_schema"] = args.default_schema
    for name in ("denied_columns", "allowed_functions", "denied_functions", "max_rows", "max_query_length"):
        if getattr(args, name, None) is not None:
            policy_fields[name] = getattr(args, name)
    if getattr(args, "allow_unbounded_writes", False):
        policy_fields["allow_unbounded_writes"] = True
    sql = args.sql if args.sql != "-" else sys.stdin.read()
    try:
        # The names' shape as `sqlgate serve` checks it (ssn without its table names nothing).
        names = {k: [part.strip() for part in v.split(",") if part.strip()]  # flags give "a,b"
                 for k, v in policy_fields.items() if k in ("allowed_tables", "denied_columns")}
        check_policy_names("check", f"{profiles.get(args.dialect).name}://", names)
        policy = Policy(**policy_fields)
    except ConfigError as error:
        _out({"allowed": False, "code": "INVALID_ARGUMENT", "message": error.message, "hint": error.hint})
        return 2
    except ValueError as error:
        _out({"allowed": False, "code": "INVALID_ARGUMENT", "message": str(error).splitlines()[0], "hint": ""})
        return 2
    try:
        verdict = safety.check(sql, args.dialect, policy)
    except SqlgateError as error:
        _out({"allowed": False, **error.to_dict()})
        return 1
    _out(verdict.to_dict())
    return 0


def _out(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqlgate", description="An MCP server that gives AI agents safe, fast access to SQL databases."
    )
    parser.add_argument("--version", action="version", version=f"sqlgate {__version__}")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the MCP server (the default command)")
    add_settings_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check", help="validate SQL offline; print the verdict as JSON, exit 1 on deny, 2 on a bad flag")
    check.add_argument("sql", help="the SQL text, or - to read it from stdin")
    check.add_argument("--dialect", default="postgres", choices=["postgres", "mysql", "mariadb", "sqlite"])
    check.add_argument("--mode", choices=["read_only", "read_write"])
    check.add_argument("--tables", dest="allowed_tables", help="whitelisted tables, comma-separated")
    check.add_argument("--default-schema", help="schema that bare table names resolve to")
    check.add_argument("--allow-multi-statement", action="store_true")
    check.add_argument("--allow-unbounded-writes", action="store_true")
    check.add_argument("--denied-columns", help="columns no query may read, comma-separated (customers.ssn)")
    check.add_argument("--allowed-functions", help="lift built-in function denials, comma-separated")
    check.add_argument("--denied-functions", help="deny more functions, comma-separated")
    check.add_argument("--max-rows", type=int, help="row cap added to queries (default 1000)")
    check.add_argument("--max-query-length", type=int, help="longest SQL text accepted (default 100000)")
    check.set_defaults(func=cmd_check)

    add_commands(sub)  # health, migrate, call

    # `sqlgate` with no command (or with flags only) means `sqlgate serve`: main() needs the names.
    parser.set_defaults(command_names=frozenset(sub.choices))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = sorted(parser.get_default("command_names"))
    known = {"-h", "--help", "--version", *commands}
    if argv and not argv[0].startswith("-") and argv[0] not in known:
        # `sqlgate server`: a word where a command goes is a mistyped command, not serve's argument.
        import difflib

        close = difflib.get_close_matches(argv[0], commands, n=1, cutoff=0.6)
        hint = f"did you mean `sqlgate {close[0]}`?" if close else "commands: " + ", ".join(commands)
        sys.stderr.write(f"sqlgate: unknown command {argv[0]!r}; {hint}\n")
        return 2
    if not argv or argv[0] not in known:
        argv = ["serve", *argv]
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as error:
        sys.stderr.write(f"sqlgate: {error.message}\n{('hint: ' + error.hint) if error.hint else ''}\n")
        return 2
    except KeyboardInterrupt:
        return 130
