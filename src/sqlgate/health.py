"""The health checks shared by the ``health_check`` tool and ``sqlgate health``.

Per database: reachable or not and the round-trip latency, dialect and version, pool
statistics, the whitelisted tables (existence, row counts: exact on SQLite and small
tables, catalog estimates elsewhere, flagged as such), sqlgate's migration status, the
slow-query count since start, and on request a create/insert/select/update/delete round
trip on a temporary table in a transaction that is rolled back.

Every probe runs under its own time limit (``health_timeout_s``), so an unreachable
database is reported as ``unhealthy`` within seconds instead of stalling the caller.
Only sqlgate's own fixed SQL runs here; identifiers come from the configured whitelist
and are quoted by SQLAlchemy (or bound as values), never pasted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel

from sqlgate.db import privileges
from sqlgate.db.privileges import PrivilegeHealth
from sqlgate.db.roundtrip import RoundTrip, round_trip
from sqlgate.db.row_counts import EXACT_BELOW, count_rows
from sqlgate.errors import SqlgateError
from sqlgate.logging import get_logger, mask_secrets

if TYPE_CHECKING:
    from sqlgate.audit import AuditLog
    from sqlgate.db.dialects.tls import TlsStatus
    from sqlgate.db.engines import Database, Databases
    from sqlgate.settings import Settings

log = get_logger("sqlgate.health")

Status = Literal["healthy", "degraded", "unhealthy"]
_RANK = {"healthy": 0, "degraded": 1, "unhealthy": 2}
EXACT_COUNT_BELOW = EXACT_BELOW  # catalog estimates under this are replaced by an exact COUNT(*)


class PoolHealth(BaseModel):
    size: int
    checked_out: int
    overflow: int
    checked_in: int
    waiting: int
    capacity: int | None = None


class TableHealth(BaseModel):
    name: str
    exists: bool
    rows: int | None = None
    rows_estimated: bool | None = None  # true: from the catalog (pg_class / information_schema)


class MigrationHealth(BaseModel):
    branch: str
    state: str  # current | behind | not_installed | unknown
    current: str | None = None
    head: str | None = None


class TlsHealth(BaseModel):
    """Whether the connection to the database is encrypted, and how (read from a probe's socket)."""

    encrypted: bool
    protocol: str | None = None  # TLSv1.3, TLSv1.2, ...
    cipher: str | None = None


class DatabaseHealth(BaseModel):
    name: str
    status: Status
    reasons: list[str]
    reachable: bool
    connect_ms: float | None = None
    latency_ms: float | None = None
    dialect: str
    version: str | None = None
    mode: str
    pool: PoolHealth | None = None
    tables: list[TableHealth] | None = None
    migrations: MigrationHealth | None = None
    slow_queries: int = 0
    slow_query_ms: int = 0
    test_operations: RoundTrip | None = None
    privileges: PrivilegeHealth | None = None
    tls: TlsHealth | None = None  # None: not a network database (SQLite)


class AuditHealth(BaseModel):
    enabled: bool
    sink: str | None = None
    state: str  # ok | broken | not_created | disabled | closed | starting
    written: int | None = None
    queued: int | None = None
    pending_retry: int | None = None
    dropped: int | None = None
    rejected: int | None = None  # records the sink refused while it worked (logged once each)
    last_error: str | None = None
    migrations: str | None = None  # sqlgate's tables in the sink: current | behind | not_installed


class HealthReport(BaseModel):
    status: Status
    reasons: list[str]
    databases: list[DatabaseHealth]
    audit: AuditHealth
    checked_at: str
    duration_ms: float


def _worst(statuses: list[str]) -> Status:
    worst = max(statuses, key=lambda s: _RANK[s], default="healthy")
    return worst  # type: ignore[return-value]


def _message(exc: BaseException) -> str:
    if isinstance(exc, SqlgateError):
        return exc.message
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timed out"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return mask_secrets(text)


# ------------------------------------------------------------------ one database


async def check_database(
    database: Database,
    *,
    timeout_s: float,
    include_stats: bool = True,
    test_operations: bool = False,
    check_privileges: bool = True,
    name_outside: bool = False,
) -> DatabaseHealth:
    """Every probe for one database; never raises, never waits longer than the probes allow."""
    report = DatabaseHealth(
        name=database.name,
        status="healthy",
        reasons=[],
        reachable=False,
        dialect=database.dialect_name,
        mode=str(database.policy.mode),
        slow_queries=database.slow_queries,
        slow_query_ms=round(database.slow_query_s * 1000),
    )
    # Probes use a connection of their own, not the pool: a saturated pool is reported
    # as such instead of making the database look unreachable.
    probe = _probe_engine(database)
    try:
        report = await _check(database, probe, report, timeout_s, include_stats, test_operations)
        if check_privileges and report.reachable:
            await _privileges(database, probe, report, timeout_s, name_outside)
        return report
    finally:
        if probe is not database.engine:
            await probe.dispose()


async def _check(
    database: Database, probe: Any, report: DatabaseHealth, timeout_s: float, include_stats: bool,
    test_operations: bool,
) -> DatabaseHealth:
    reasons = report.reasons
    try:
        report.connect_ms, report.latency_ms, tls = await asyncio.wait_for(_ping(probe, database), timeout_s)
        report.reachable = True
        report.tls = None if tls is None else TlsHealth(encrypted=tls.encrypted, protocol=tls.protocol,
                                                        cipher=tls.cipher)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        reasons.append(f"{database.name}: unreachable: {_message(exc)}")
        report.status = "unhealthy"
        return report
    try:
        await asyncio.wait_for(database.ensure_ready(), timeout_s)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        reasons.append(f"{database.name}: set-up failed: {_message(exc)}")
    storage = database.driver.storage_problem(database.engine.url, database.policy.read_only)
    if storage:  # e.g. SQLite read_write on a read-only file
        reasons.append(f"{database.name}: {storage}")
    report.version = database.server_version or None
    if include_stats:
        report.pool = pool_health(database)
        if report.pool.waiting > 0 or (
            report.pool.capacity is not None and report.pool.checked_out >= report.pool.capacity
        ):
            reasons.append(f"{database.name}: pool saturated ({report.pool.checked_out} connections in use, "
                           f"{report.pool.waiting} calls waiting)")
    try:
        report.tables = await asyncio.wait_for(_tables(database, probe, include_stats), timeout_s)
        missing = [t.name for t in report.tables if not t.exists]
        if missing:
            reasons.append(f"{database.name}: whitelisted table(s) missing: {', '.join(missing)}")
    except Exception as exc:  # noqa: BLE001
        reasons.append(f"{database.name}: table check failed: {_message(exc)}")
    try:
        report.migrations = await asyncio.wait_for(_migrations(database, probe), timeout_s)
        if report.migrations.state == "behind":
            reasons.append(
                f"{database.name}: sqlgate migrations behind ({report.migrations.current} < "
                f"{report.migrations.head}); run: sqlgate migrate upgrade"
            )
    except Exception as exc:  # noqa: BLE001
        report.migrations = MigrationHealth(branch="sqlgate", state="unknown")
        reasons.append(f"{database.name}: migration check failed: {_message(exc)}")
    if test_operations:
        report.test_operations = await round_trip(database, timeout_s)
        if not report.test_operations.ok or report.test_operations.persisted:
            reasons.append(f"{database.name}: test operations failed: {report.test_operations.error}")
    if reasons:
        report.status = "degraded"
    return report


async def _privileges(database: Database, probe: Any, report: DatabaseHealth, timeout_s: float,
                      name_outside: bool) -> None:
    """What the connected role can read beyond the policy (db/privileges.py): ``degraded``."""
    try:
        report.privileges = await asyncio.wait_for(
            privileges.check(database, probe, name_outside=name_outside), timeout_s)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        report.privileges = PrivilegeHealth(checked=False, findings=[f"check failed: {_message(exc)}"])
        return
    if report.privileges.beyond_policy:
        report.reasons.append(
            f"{database.name}: the connected role can read beyond the policy: "
            f"{'; '.join(report.privileges.findings)}; {privileges.GRANTS_HINT}"
        )
        if report.status == "healthy":
            report.status = "degraded"


def _probe_engine(database: Database) -> Any:
    """An unpooled engine for the probes (the pool's own engine for in-memory SQLite)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    url = database.engine.url
    if database.driver.private_memory(url):
        return database.engine
    kwargs = database.driver.engine_kwargs(database.policy.read_only, database.policy.statement_timeout_ms)
    return create_async_engine(url, poolclass=sa.pool.NullPool, **kwargs)


async def _ping(engine: Any, database: Database) -> tuple[float, float, TlsStatus | None]:
    """Connect, then time one ``SELECT 1`` round trip: (connect ms, latency ms, TLS status)."""
    started = time.perf_counter()
    async with engine.connect() as conn:
        connected = time.perf_counter()
        await conn.exec_driver_sql("SELECT 1")
        elapsed = time.perf_counter() - connected
        raw = await conn.get_raw_connection()
        tls = database.driver.tls_status(raw.driver_connection)
        await conn.rollback()
    return round((connected - started) * 1000, 3), round(elapsed * 1000, 3), tls


def pool_health(database: Database) -> PoolHealth:
    stats = database.pool_stats()
    max_overflow = getattr(database.engine.pool, "_max_overflow", None)
    capacity = stats.size + max_overflow if isinstance(max_overflow, int) and max_overflow >= 0 and stats.size else None
    return PoolHealth(
        size=stats.size,
        checked_out=stats.checked_out,
        overflow=stats.overflow,
        checked_in=stats.checked_in,
        waiting=stats.waiting,
        capacity=capacity,
    )


def _split_name(entry: str, default_schema: str | None) -> tuple[str | None, str]:
    schema, _, name = entry.rpartition(".")
    return (schema or None), name


async def _tables(database: Database, engine: Any, include_stats: bool) -> list[TableHealth]:
    entries = list(database.policy.allowed_tables or ())
    if not entries:
        return []
    dialect = database.driver

    def probe(sync_conn: Any) -> list[TableHealth]:
        inspector = sa.inspect(sync_conn)
        known: dict[str | None, set[str]] = {}
        found: list[TableHealth] = []
        for entry in entries:
            schema, name = _split_name(entry, database.policy.default_schema)
            if schema not in known:
                try:
                    names = set(inspector.get_table_names(schema=schema)) | set(inspector.get_view_names(schema=schema))
                except sa.exc.DBAPIError:  # the schema itself does not exist (MySQL says so)
                    names = set()
                known[schema] = {n.lower() for n in names} | names
            exists = name in known[schema] or name.lower() in known[schema]
            health = TableHealth(name=entry, exists=exists)
            if exists and include_stats:
                health.rows, health.rows_estimated = count_rows(sync_conn, dialect, schema, name)
            found.append(health)
        return found

    async with engine.connect() as conn:
        try:
            found: list[TableHealth] = await conn.run_sync(probe)
            return found
        finally:
            await conn.rollback()


async def _migrations(database: Database, engine: Any) -> MigrationHealth:
    from sqlgate import migrations

    branch = migrations.DEMO_BRANCH if database.demo else migrations.SQLGATE_BRANCH
    async with engine.connect() as conn:
        try:
            revisions = await conn.run_sync(migrations.current_revisions)
        finally:
            await conn.rollback()
    status = await asyncio.to_thread(migrations.branch_status, revisions, branch)
    return MigrationHealth(branch=branch, state=status.state, current=status.current, head=status.head)


# ------------------------------------------------------------------ the report


def audit_health(audit: AuditLog | None, enabled: bool) -> AuditHealth:
    if not enabled or audit is None:
        return AuditHealth(enabled=enabled, state="disabled" if not enabled else "starting")
    status = audit.status()
    return AuditHealth(
        enabled=True, sink=status.sink, state=status.state, written=status.written,
        queued=status.queued, pending_retry=status.pending_retry, dropped=status.dropped, rejected=status.rejected,
        last_error=status.last_error, migrations=status.migrations,
    )


async def probe_audit_sink(settings: Settings, timeout_s: float) -> AuditHealth:
    """For ``sqlgate health`` (no server running): can the audit sink take records?"""
    from sqlalchemy.ext.asyncio import create_async_engine

    from sqlgate import migrations
    from sqlgate.audit import AUDIT_TABLE, sink_url
    from sqlgate.db import dialects

    if not settings.audit_enabled:
        return AuditHealth(enabled=False, state="disabled")
    url = sink_url(settings)
    shown = mask_secrets(url)
    engine = None
    try:
        target = dialects.async_url(url)
        default_file = dialects.for_url(target).local_file(target)
        if settings.audit_database_url is None and default_file is not None and not await asyncio.to_thread(
            default_file.exists
        ):
            return AuditHealth(enabled=True, sink=shown, state="not_created")  # made on first serve
        engine = create_async_engine(target, poolclass=sa.pool.NullPool)

        async def inspect_sink() -> tuple[bool, list[str]]:
            async with engine.connect() as conn:
                exists = bool(await conn.run_sync(lambda c: sa.inspect(c).has_table(AUDIT_TABLE)))
                return exists, await conn.run_sync(migrations.current_revisions)

        exists, revisions = await asyncio.wait_for(inspect_sink(), timeout_s)
        state = (await asyncio.to_thread(migrations.branch_status, revisions)).state
        if not exists:
            return AuditHealth(
                enabled=True, sink=shown, state="broken", migrations=state,
                last_error=f"table {AUDIT_TABLE} does not exist; run: sqlgate migrate upgrade --audit",
            )
        return AuditHealth(enabled=True, sink=shown, state="ok", migrations=state)
    except Exception as exc:  # noqa: BLE001
        return AuditHealth(enabled=True, sink=shown, state="broken", last_error=_message(exc))
    finally:
        if engine is not None:
            await engine.dispose()


async def check(
    databases: Databases,
    audit: AuditHealth,
    *,
    timeout_s: float,
    include_stats: bool = True,
    test_operations: bool = False,
    only: str | None = None,
    check_privileges: bool = True,
    name_outside: bool = False,
) -> HealthReport:
    """The whole report: every database (concurrently) plus the audit log. ``name_outside``:
    the operator's report (``sqlgate health``) names tables outside the whitelist the role can
    read; the ``health_check`` tool, which an agent reads, only counts them."""
    started = time.perf_counter()
    targets = [databases.get(only)] if only else list(databases)
    results = await asyncio.gather(*(
        check_database(db, timeout_s=timeout_s, include_stats=include_stats, test_operations=test_operations,
                       check_privileges=check_privileges, name_outside=name_outside)
        for db in targets
    ))
    reasons = [reason for result in results for reason in result.reasons]
    statuses: list[str] = [result.status for result in results]
    if audit.state == "broken":
        reasons.append(f"audit log: the sink is broken ({audit.last_error}); tool calls go on, records wait")
        statuses.append("degraded")
    elif audit.migrations == "behind":
        reasons.append("audit log: sqlgate's migrations are behind in the audit database; "
                       "run: sqlgate migrate upgrade --audit")
        statuses.append("degraded")
    return HealthReport(
        status=_worst(statuses),
        reasons=reasons,
        databases=list(results),
        audit=audit,
        checked_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )


def exit_code(status: str) -> int:
    """``sqlgate health``: 0 healthy, 1 degraded, 2 unhealthy."""
    return _RANK[status]
