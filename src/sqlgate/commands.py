"""The operator commands: ``sqlgate health``, ``sqlgate migrate`` and ``sqlgate call``.

``cli.build_parser`` registers them through ``add_commands``; each ``cmd_*`` returns the
process exit code. Output for people (or ``--json`` for machines) goes to stdout; logs go
to stderr as everywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import sys
from typing import Any

from sqlgate.arguments import add_settings_arguments, settings_from_args
from sqlgate.errors import ConfigError

HEALTH_EPILOG = "exit status: 0 healthy, 1 degraded, 2 unhealthy (or bad configuration)"


def add_commands(sub: Any) -> None:
    health = sub.add_parser(
        "health", help="check every configured database (and the audit log); exit 0/1/2",
        epilog=HEALTH_EPILOG,
    )
    health.add_argument("--json", action="store_true", help="print the report as JSON")
    health.add_argument("--test-operations", action="store_true",
                        help="also run a rolled-back write round trip on a temporary table")
    health.add_argument("--no-stats", action="store_true", help="skip pool statistics and row counts")
    health.add_argument("--demo", action="store_true",
                        help="check the demo database when no database is configured (otherwise exit 2)")
    health.add_argument("--docker", action="store_true",
                        help="for a container HEALTHCHECK: exit 0 healthy or degraded, 1 otherwise (Docker "
                        "reserves 2); also requires http://127.0.0.1:PORT/healthz (the HTTP listener) to answer")
    add_settings_arguments(health)
    health.set_defaults(func=cmd_health)

    migrate = sub.add_parser(
        "migrate", help="run sqlgate's migrations (audit table; demo shop with demo@head)",
    )
    migrate.add_argument("action", choices=["upgrade", "downgrade", "current", "history"])
    migrate.add_argument(
        "revision", nargs="?",
        help="target revision: upgrade defaults to sqlgate@head; demo@head loads the demo shop; "
        "downgrade needs one (e.g. sqlgate@base)",
    )
    migrate.add_argument("--audit", action="store_true",
                         help="migrate the audit database (audit_database_url) instead of the served one")
    migrate.add_argument("--json", action="store_true", help="print current/history as JSON")
    add_settings_arguments(migrate)
    migrate.set_defaults(func=cmd_migrate)

    call = sub.add_parser(
        "call", help="run the server `sqlgate serve` would run, call one tool through an MCP client, "
        "print its structured result",
        epilog="exit status: 0 success, 1 the tool returned an error, 2 the server could not be used",
    )
    call.add_argument("tool", help="tool name, e.g. health_check or execute_query")
    call.add_argument("--args", dest="tool_args", default="{}", metavar="JSON",
                      help='the tool arguments as a JSON object, e.g. \'{"query": "SELECT 1"}\'')
    call.add_argument("--call-timeout", type=float, default=120.0, metavar="SECONDS",
                      help="give up on the call after this long (default 120)")
    add_settings_arguments(call)
    call.set_defaults(func=cmd_call)

    from sqlgate import grants  # `sqlgate grants`: least-privilege role DDL (issue 11)

    grants.add_command(sub)


def _quiet_logging(args: argparse.Namespace, settings: Any) -> None:
    from sqlgate import logging as sqlgate_logging

    level = settings.log_level if getattr(args, "log_level", None) else "WARNING"
    sqlgate_logging.configure(level, settings.log_format)
    check_configuration(settings)


# Settings that protect something: a variable misspelling one stops start-up (it would be
# ignored, and the server would run without that protection).
_PROTECTIONS = frozenset(f"SQLGATE_{name.upper()}" for name in (
    "mode", "allowed_tables", "denied_columns", "allowed_functions", "denied_functions", "max_rows",
    "statement_timeout_ms", "allow_multi_statement", "allow_unbounded_writes", "max_query_length",
    "max_result_bytes", "max_value_bytes", "untrusted_data_boundary", "auth_token", "auth_token_file",
    "allow_unauthenticated", "allowed_hosts", "allowed_origins", "audit_enabled", "audit_database_url",
    "audit_parameters",
))


def check_configuration(settings: Any) -> None:
    """Before anything connects: every configured URL can work (a one-line ConfigError
    with the fix, never a traceback later), and each ``SQLGATE_*`` variable no setting
    reads (a typo) is named in a warning with the closest setting. Logging is set up."""
    from sqlgate.db import dialects
    from sqlgate.logging import get_logger
    from sqlgate.settings import unknown_environment

    misspelt = []
    for name, closest in unknown_environment():
        protection = difflib.get_close_matches(name.upper(), _PROTECTIONS, n=1, cutoff=0.85)
        if protection:
            misspelt.append(f"{name} (did you mean {protection[0]}?)")
            continue
        get_logger("sqlgate.settings").warning(
            "unknown environment variable ignored", variable=name,
            hint=f"did you mean {closest}?" if closest else "see README, Configuration",
        )
    if misspelt:
        # Ignoring these would serve without the protection the operator meant to set.
        raise ConfigError(
            f"unknown environment variable(s) close to a protective setting: {', '.join(misspelt)}",
            "fix the name (or unset the variable); a misspelt protection is refused, not ignored",
        )
    for config in settings.resolved_databases():
        dialects.check_url(config.url)
    if settings.audit_enabled and settings.audit_database_url:
        dialects.check_url(settings.audit_database_url)


# --------------------------------------------------------------------------- health


def cmd_health(args: argparse.Namespace) -> int:
    if getattr(args, "docker", False):
        return _docker_health(args)
    from sqlgate import health

    settings = settings_from_args(args)
    _quiet_logging(args, settings)  # warns of misspelled SQLGATE_* variables first
    if settings.resolved_databases()[0].demo and not args.demo:
        raise ConfigError("no database configured; pass --database-url, or --demo to check the demo",
                          "or set DATABASE_URL / SQLGATE_DATABASE_URL (sqlgate health never checks the demo silently)")
    report = asyncio.run(run_health(settings, include_stats=not args.no_stats, test_operations=args.test_operations))
    if args.json:
        sys.stdout.write(report.model_dump_json(indent=2, exclude_none=True) + "\n")
    else:
        sys.stdout.write(format_report(report))
    return health.exit_code(report.status)


def _docker_health(args: argparse.Namespace) -> int:
    """Docker's HEALTHCHECK contract: 0 healthy, 1 unhealthy, never 2 (reserved). A degraded
    sqlgate (an audit sink down, a missing table) still serves calls: healthy for Docker,
    reported on stdout. The HTTP listener must answer too: a process whose databases are fine
    but whose port is dead is not healthy."""
    import urllib.request

    from sqlgate import health

    try:
        settings = settings_from_args(args)
        _quiet_logging(args, settings)
        url = f"http://127.0.0.1:{settings.port}/healthz"
        with urllib.request.urlopen(url, timeout=settings.health_timeout_s) as answer:  # noqa: S310 - our own listener
            if answer.status != 200:
                raise OSError(f"{url} answered {answer.status}")
        report = asyncio.run(run_health(settings, include_stats=not args.no_stats,
                                        test_operations=args.test_operations))
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy" for Docker
        sys.stdout.write(f"unhealthy: {type(exc).__name__}: {exc}\n")
        return 1
    sys.stdout.write(format_report(report))
    return 1 if health.exit_code(report.status) >= 2 else 0


async def run_health(settings: Any, *, include_stats: bool = True, test_operations: bool = False) -> Any:
    """The health report without a server: engines opened here, probes only."""
    from sqlgate import health
    from sqlgate.db.engines import Databases, create_database
    from sqlgate.demo import prepare_demo_databases

    opened = []
    try:
        await prepare_demo_databases(settings)
        for config in settings.resolved_databases():
            opened.append(create_database(config, settings))
        databases = Databases(opened)
        audit = await health.probe_audit_sink(settings, settings.health_timeout_s)
        return await health.check(
            databases, audit, timeout_s=settings.health_timeout_s,
            include_stats=include_stats, test_operations=test_operations,
            check_privileges=settings.check_privileges, name_outside=True,
        )
    finally:
        if opened:
            await Databases(opened).close()


def format_report(report: Any) -> str:
    lines = [f"sqlgate health: {report.status} ({report.duration_ms:.0f} ms)"]
    for db in report.databases:
        if not db.reachable:
            lines.append(f"  {db.name}: {db.status}, {db.dialect}, unreachable")
            continue
        head = f"  {db.name}: {db.status}, {db.version or db.dialect}, {db.mode}, latency {db.latency_ms:.1f} ms"
        lines.append(head)
        if db.pool is not None:
            capacity = f"/{db.pool.capacity}" if db.pool.capacity else ""
            lines.append(f"    pool: {db.pool.checked_out}{capacity} in use, {db.pool.waiting} waiting")
        if db.tables is not None:
            shown = []
            for table in db.tables:
                if not table.exists:
                    shown.append(f"{table.name} (MISSING)")
                elif table.rows is None:
                    shown.append(table.name)
                else:
                    shown.append(f"{table.name} ({'~' if table.rows_estimated else ''}{table.rows} rows)")
            lines.append(f"    tables: {', '.join(shown) or 'none whitelisted'}")
        if db.migrations is not None:
            current = f" at {db.migrations.current}" if db.migrations.current else ""
            lines.append(f"    migrations ({db.migrations.branch}): {db.migrations.state}{current}, head {db.migrations.head}")
        if db.tls is not None:
            how = " ".join(filter(None, (db.tls.protocol, db.tls.cipher)))
            lines.append(f"    tls: {'encrypted, ' + how if db.tls.encrypted else 'NOT encrypted (plaintext)'}")
        lines.append(f"    slow queries (> {db.slow_query_ms} ms) since start: {db.slow_queries}")
        if db.test_operations is not None:
            trip = db.test_operations
            verdict = "ok, nothing persisted" if trip.ok else f"FAILED: {trip.error}"
            lines.append(f"    test operations ({', '.join(trip.steps)}): {verdict}")
        if db.privileges is not None and db.privileges.checked:
            found = "; ".join(db.privileges.findings) if db.privileges.beyond_policy else "nothing beyond the policy"
            lines.append(f"    privileges: {found}")
    audit = report.audit
    detail = f" ({audit.last_error})" if audit.last_error else ""
    lines.append(f"  audit log: {audit.state}{' -> ' + audit.sink if audit.sink else ''}{detail}")
    if report.reasons:
        lines.append("reasons:")
        lines.extend(f"  - {reason}" for reason in report.reasons)
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------- migrate


def cmd_migrate(args: argparse.Namespace) -> int:
    from sqlgate import audit as audit_module
    from sqlgate import migrations
    from sqlgate.logging import mask_secrets

    settings = settings_from_args(args)
    _quiet_logging(args, settings)
    url = audit_module.sink_url(settings) if args.audit else settings.resolved_databases()[0].url
    shown = mask_secrets(url)
    if args.action == "history":
        entries = migrations.history()
        if args.json:
            _json(entries)
        else:
            for entry in entries:
                sys.stdout.write(f"{entry['revision']} ({', '.join(entry['branch'])}): {entry['message']}\n")
        return 0
    if args.action == "current":
        revisions = asyncio.run(migrations.current(url))
        statuses = [migrations.branch_status(revisions, branch)
                    for branch in (migrations.SQLGATE_BRANCH, migrations.DEMO_BRANCH)]
        if args.json:
            _json({"database": shown, "revisions": revisions,
                   "branches": {s.branch: {"state": s.state, "current": s.current, "head": s.head} for s in statuses}})
        else:
            sys.stdout.write(f"{shown}\n")
            for s in statuses:
                sys.stdout.write(f"  {s.branch}: {s.state} (current {s.current or '-'}, head {s.head})\n")
        return 0
    if args.action == "upgrade":
        revision = args.revision or f"{migrations.SQLGATE_BRANCH}@head"
        if settings.resolved_databases()[0].demo and not args.audit and revision.startswith(migrations.SQLGATE_BRANCH):
            raise ConfigError("no database configured to migrate",
                              "pass --database-url URL (or --audit for the audit database)")
        asyncio.run(migrations.upgrade(url, revision))
    else:
        if not args.revision:
            raise ConfigError("downgrade needs a target revision",
                              "e.g. sqlgate migrate downgrade sqlgate@base (drops the audit table)")
        asyncio.run(migrations.downgrade(url, args.revision))
    revisions = asyncio.run(migrations.current(url))
    sys.stdout.write(f"{shown}: {args.action} to {args.revision or 'sqlgate@head'} done; "
                     f"now at {', '.join(revisions) or 'base'}\n")
    return 0


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# ----------------------------------------------------------------------------- call


def cmd_call(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.tool_args)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--args is not valid JSON: {exc}", 'pass a JSON object, e.g. --args \'{"query": "SELECT 1"}\'')
    if not isinstance(arguments, dict):
        raise ConfigError("--args must be a JSON object", 'e.g. --args \'{"query": "SELECT 1"}\'')
    if getattr(args, "log_level", None) is None:
        args.log_level = "WARNING"
    settings = settings_from_args(args)  # flags > SQLGATE_* / DATABASE_URL > --config > defaults
    check_configuration(settings)
    try:
        result = asyncio.run(asyncio.wait_for(_call(args.tool, arguments, settings), args.call_timeout))
    except TimeoutError:
        sys.stderr.write(f"sqlgate call: no result within {args.call_timeout:g} s\n")
        return 2
    except Exception as exc:  # noqa: BLE001 - the server failed to start or broke the protocol
        sys.stderr.write(f"sqlgate call: the server could not be used: {type(exc).__name__}: {exc}\n")
        return 2
    if result.structured_content is not None:
        output: Any = result.structured_content
    else:
        output = {"content": [getattr(item, "text", None) for item in result.content]}
    _json(output)
    return 1 if result.is_error else 0


async def _call(tool: str, arguments: dict[str, Any], settings: Any) -> Any:
    """One tool call through a real MCP client session on the server ``sqlgate serve`` would
    run, in this process (over the SDK's in-memory transport): one interpreter start and one
    import of the server instead of two (a cold call took 3-5 s as a stdio child process)."""
    from mcp import Client

    from sqlgate.server.app import build_server

    async with Client(build_server(settings)) as client:
        return await client.call_tool(tool, arguments)
