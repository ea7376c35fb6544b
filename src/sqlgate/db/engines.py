"""One pooled SQLAlchemy ``AsyncEngine`` per configured database, and the registry of them.

``open_databases`` runs in the server lifespan: it maps plain URLs to the async drivers,
creates the engines, connects once to learn the server (version, default schema), fills
in the default whitelist from reflection, and logs what it serves. ``close`` disposes
every pool at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import await_
from sqlglot import exp

from sqlgate.db import dialects
from sqlgate.db.dialects import Dialect, async_url
from sqlgate.db.structure import SchemaCache
from sqlgate.errors import (
    ConfigError,
    DatabaseUnavailable,
    InvalidArgument,
    PolicyViolation,
    PoolExhausted,
    SqlgateError,
)
from sqlgate.logging import get_logger, mask_secrets
from sqlgate.safety import profiles as safety_profiles
from sqlgate.safety.policy import COLUMNS_SEP, Policy
from sqlgate.safety.redact import redact_error, redact_tables
from sqlgate.safety.tables import TableName, is_allowed, parse_whitelist, table_key, table_name
from sqlgate.settings import ResolvedDatabase, Settings

log = get_logger("sqlgate.db")

IDLE_BACKSTOP_MARGIN_S = 60

# Tables sqlgate owns; never part of a default whitelist.
SQLGATE_TABLES = frozenset({"sqlgate_audit", "sqlgate_alembic_version", "alembic_version"})
# Connect retries: the first waits up to RETRY_BASE_S, each next up to twice as long.
RETRY_BASE_S = 0.25
RETRY_MAX_S = 2.0
# A pooled connection back in the pool for less than this is handed out after a check
# without a round trip (is its socket still open?); one idle longer is pinged first, as
# a firewall or NAT may have dropped it without a word.
PING_AFTER_IDLE_S = 30.0
# The pool's mark for a connection returned with nothing open on it (boundary.Lease):
# the reset on return (a ROLLBACK round trip) is skipped.
CLEAN_ON_RETURN = "sqlgate_clean"


def _tls_hint(message: str) -> str | None:
    """The fix for a TLS failure while connecting (docs/connecting.md), if it is one."""
    lowered = message.lower()
    if "rejected ssl upgrade" in lowered or "does not offer tls" in lowered:
        return ("the URL requires TLS but the server does not offer it: enable TLS on the server "
                "(sqlgate never falls back to plaintext); see docs/connecting.md")
    if "certificate verify failed" in lowered or "hostname mismatch" in lowered:
        return ("the server's certificate was not accepted: give the CA that signed it (sslrootcert= / ssl_ca=) "
                "and connect by the host name it names; see docs/connecting.md")
    return None


def _worth_retrying(exc: BaseException) -> bool:
    """A refused/reset/timed-out connection attempt (the server not there yet); never a
    rejected login, a TLS refusal or a configuration error: those fail the same again."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (ConnectionRefusedError, ConnectionResetError, TimeoutError)):
            return True
        text = str(seen).lower()
        if "can't connect to mysql server" in text or "lost connection" in text or "cannot connect now" in text \
                or "the database system is starting up" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False

__all__ = ["SQLGATE_TABLES", "Database", "Databases", "PoolStats", "async_url", "create_database", "open_databases"]


@dataclass
class PoolStats:
    size: int
    checked_out: int
    overflow: int
    checked_in: int
    waiting: int = 0  # calls waiting for a connection right now


@dataclass
class Database:
    """A configured database: its engine, dialect, effective policy and facts."""

    name: str
    engine: AsyncEngine
    driver: Dialect  # the dialect module's object for this database (see db/dialects/)
    policy: Policy
    max_result_bytes: int
    display_url: str
    max_value_bytes: int = 64 * 1024  # any single value is cut there (db/results.py)
    demo: bool = False
    server_version: str = ""
    pool_timeout_s: float = 10.0
    # Reflected table structure (db/schema.py).
    schema_cache: SchemaCache = field(default_factory=SchemaCache)
    # Set up (server facts, default whitelist) once reachable; see ensure_ready().
    ready: bool = False
    # Counted by the guarded executor; reported by health_check.
    slow_query_s: float = 1.0
    slow_queries: int = 0
    waiting: int = 0
    # A refused connection is retried (backoff with jitter) inside the call's deadline.
    connect_retries: int = 0
    # Clean-ups of cancelled or timed-out calls still running (db/boundary.py).
    cleanups: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    _ready_lock: asyncio.Lock | None = field(default=None, repr=False)

    @property
    def dialect(self) -> str:
        """sqlglot's dialect name, for parsing and rendering (``postgres``, ``mysql``, ``sqlite``).

        Output names the dialect by ``dialect_name`` (canonical: ``postgresql``)."""
        return self.driver.sqlglot_dialect

    @property
    def dialect_name(self) -> str:
        """The canonical dialect name every output uses: ``postgresql``, ``mysql``, ``sqlite``."""
        return self.driver.name

    async def checkout(self) -> tuple[AsyncConnection, Any, Any]:
        """A pooled connection: (SQLAlchemy connection, pool proxy, driver connection)."""
        self.waiting += 1
        try:
            conn = await self._connect()
        except sa_exc.TimeoutError as exc:
            raise PoolExhausted(
                f"no free connection to database {self.name!r} within {self.pool_timeout_s:g} s",
                "retry shortly: too many calls are running at once",
            ) from exc
        except (OSError, sa_exc.DBAPIError, sa_exc.InterfaceError) as exc:
            raise self.unreachable(exc) from exc
        finally:
            self.waiting -= 1
        # No await between the checkout and the return: a cancellation here would leak
        # the checked-out connection. (The call's deadline is applied by db.boundary.)
        raw: Any = conn.sync_connection.connection if conn.sync_connection is not None else None
        if raw is None:
            raw = await conn.get_raw_connection()
        return conn, raw, raw.driver_connection

    async def _connect(self) -> AsyncConnection:
        """``engine.connect()``, retried when the server refused or dropped the attempt (a
        serverless database waking up): exponential backoff from RETRY_BASE_S with full
        jitter. The caller's deadline (db/boundary.py) bounds the whole loop."""
        attempt = 0
        while True:
            try:
                return await self.engine.connect()
            except (OSError, sa_exc.DBAPIError, sa_exc.InterfaceError) as exc:
                if attempt >= self.connect_retries or not _worth_retrying(exc):
                    raise
                delay = random.uniform(0, min(RETRY_MAX_S, RETRY_BASE_S * 2**attempt))  # noqa: S311
                attempt += 1
                log.info("connection refused; retrying", database=self.name, attempt=attempt,
                         delay_ms=round(delay * 1000), error=str(exc).splitlines()[0][:200] if str(exc) else "")
                await asyncio.sleep(delay)

    def map_error(self, exc: BaseException, timeout_ms: int) -> SqlgateError:
        """The dialect's error for ``exc``; where the policy denies columns, the values the
        database quoted in its message are redacted (a denied value could be among them);
        a table outside the whitelist the message names (a foreign key's other side) is
        not named."""
        error = self.driver.map_error(exc, timeout_ms)
        if self.policy.denied_columns:
            redact_error(error)
        return redact_tables(error, self.is_whitelisted)

    def whitelist(self) -> tuple[safety_profiles.SafetyProfile, frozenset[TableName]]:
        """The database's name rules (exact on MySQL with lower_case_table_names=0) and its
        whitelist under them."""
        profile = safety_profiles.for_policy(safety_profiles.get(self.dialect), self.policy.exact_table_names)
        return profile, parse_whitelist(self.policy.allowed_tables or (), profile)

    def allowed_name(self, parsed: exp.Table) -> TableName | None:
        """The resolved name of the parsed table when the whitelist holds it, else None
        (PolicyViolation for a name that reaches another database)."""
        profile, whitelist = self.whitelist()
        try:
            name = table_name(parsed, profile)
        except PolicyViolation:
            raise
        except Exception:  # noqa: BLE001 - a name the rules cannot resolve is not allowed
            return None
        default = table_key(self.policy.default_schema, profile) if self.policy.default_schema else None
        return name if is_allowed(name, whitelist, default) else None

    def is_whitelisted(self, schema: str | None, name: str) -> bool:
        """Whether a table the database names (exact spelling: a foreign key's target, an
        error message) is whitelisted; another database's table never is."""
        try:
            return self.allowed_name(exp.table_(name, db=schema, quoted=True)) is not None
        except PolicyViolation:
            return False

    def unreachable(self, exc: BaseException) -> DatabaseUnavailable:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return DatabaseUnavailable(
            f"cannot connect to database {self.name!r} ({self.display_url}): {mask_secrets(first_line)}",
            _tls_hint(first_line) or "check that the database is running and the URL is right; run health_check",
        )

    def pool_stats(self) -> PoolStats:
        pool: Any = self.engine.pool
        size = pool.size() if hasattr(pool, "size") else 0
        return PoolStats(
            size=size,
            checked_out=pool.checkedout() if hasattr(pool, "checkedout") else 0,
            overflow=max(pool.overflow(), 0) if hasattr(pool, "overflow") else 0,
            checked_in=pool.checkedin() if hasattr(pool, "checkedin") else 0,
            waiting=self.waiting,
        )

    async def ensure_ready(self) -> None:
        """Learn the server facts and the default whitelist, once, on first success.

        Start-up calls this too; a database unreachable then stays configured (health
        reports it) and is set up on the first call that reaches it.
        """
        if self.ready:
            return
        if self._ready_lock is None:
            self._ready_lock = asyncio.Lock()
        async with self._ready_lock:
            if self.ready:
                return
            try:
                await asyncio.wait_for(self._learn(), timeout=self.pool_timeout_s)
            except TimeoutError as exc:
                raise DatabaseUnavailable(
                    f"database {self.name!r} ({self.display_url}) did not answer within {self.pool_timeout_s:g} s",
                    "check that the database is running and reachable; run health_check",
                ) from exc
            except (OSError, sa_exc.DBAPIError, sa_exc.InterfaceError) as exc:
                raise self.unreachable(exc) from exc
            self.ready = True

    async def _learn(self) -> None:
        from sqlgate.db import reflect

        started = time.perf_counter()
        facts = await reflect.server_facts(self.engine, self.driver)
        self.server_version = facts.version
        profile = safety_profiles.get(self.dialect)
        system = bool(facts.default_schema) and profile.is_catalog(facts.default_schema, "")
        if system:
            log.warning(
                "the database URL names a system schema; no table of it is whitelisted by reflection",
                database=self.name, schema=facts.default_schema,
                hint="point the URL at the database that holds your tables, or set allowed_tables explicitly",
            )
        tables = None
        if self.policy.allowed_tables is None:
            # System schemas and catalog tables never enter a reflected whitelist.
            tables = () if system else tuple(
                t for t in await reflect.table_names(self.engine, facts.default_schema)
                if t.lower() not in SQLGATE_TABLES and not profile.is_catalog(None, t)
            )
        updates: dict[str, Any] = {"default_schema": facts.default_schema,
                                   "exact_table_names": facts.exact_table_names}
        if tables is not None:
            updates["allowed_tables"] = tables
        if self.policy.denied_columns:
            readable = tables if tables is not None else tuple(self.policy.allowed_tables or ())
            updates["table_columns"] = await self._protected_columns(reflect, readable)
        self.policy = self.policy.model_copy(update=updates)
        log.info(
            "database ready",
            database=self.name,
            url=self.display_url,
            dialect=self.dialect_name,
            version=facts.version,
            mode=str(self.policy.mode),
            allowed_tables=list(self.policy.allowed_tables or ()),
            whitelist_source="reflected" if tables is not None else "configured",
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    async def _protected_columns(self, reflect: Any, readable: tuple[str, ...]) -> tuple[str, ...]:
        """The reflected columns of every table with denied columns (safety resolves each
        column reference of a statement on them against these). An entry whose table does
        not exist but nearly names a readable one (``customer.ssn`` beside ``customers``)
        is a typo that would leave the real column readable: ConfigError."""
        from sqlgate.safety.columns import denied_tables

        wanted = denied_tables(self.policy.denied_columns, self.dialect)
        found = await reflect.column_names(self.engine, [(schema, name) for schema, name, _ in wanted])
        known = []
        for schema, name, key in wanted:
            columns = found.get((schema, name))
            if columns is None:
                near = _near_miss(name, readable)
                if near is not None:
                    raise ConfigError(
                        f"database {self.name!r}: denied_columns names table {key}, which does not exist; "
                        f"the readable table {near} has a name close to it",
                        f"write the table as it is named (e.g. {near}.<column>); a misnamed entry protects nothing",
                    )
                log.warning("a table named in denied_columns was not found; its columns are judged by name only",
                            database=self.name, table=key)
                continue
            known.append(COLUMNS_SEP.join((key, *columns)))
        return tuple(known)


def _near_miss(name: str, readable: tuple[str, ...]) -> str | None:
    """A readable table whose name differs from ``name`` by a small typo, if any. The same
    name (in any case) is no typo: the table is there, its columns could not be reflected
    (privileges), and the validator still protects it by name, case-insensitively."""
    import difflib

    wanted = name.lower()
    plain_names = [(table, table.rsplit(".", 1)[-1].strip('"`[]').lower()) for table in readable]
    if any(plain == wanted for _, plain in plain_names):
        return None
    for table, plain in plain_names:
        if difflib.SequenceMatcher(None, wanted, plain).ratio() >= 0.8:
            return table
    return None


class Databases:
    """The configured databases by name; the first is the default."""

    def __init__(self, databases: list[Database]) -> None:
        self._by_name = {db.name: db for db in databases}
        self.default = databases[0]

    def get(self, name: str | None = None) -> Database:
        if name is None or name == "":
            return self.default
        try:
            return self._by_name[name]
        except KeyError:
            raise InvalidArgument(
                f"unknown database {name!r}",
                f"configured databases: {', '.join(self._by_name)}",
            ) from None

    def names(self) -> list[str]:
        return list(self._by_name)

    def __iter__(self) -> Iterator[Database]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    async def close(self) -> None:
        # Cancelled calls' clean-ups (cancel in the database, invalidate; started and
        # time-bounded by db/boundary.py) finish before the pools close.
        pending = {task for db in self for task in db.cleanups}
        if pending:
            await asyncio.wait(pending)
        await asyncio.gather(*(db.engine.dispose() for db in self), return_exceptions=True)


def connect_url(config: ResolvedDatabase) -> URL:
    """The async URL the engines of ``config`` open: checked (a one-line ConfigError with
    the fix for a URL that cannot work), with the ``prepared_statements`` setting written
    into it, so every engine made from it (health probes, cancel connections) knows."""
    url = dialects.check_url(config.url)
    if (config.prepared_statements != "auto" and "prepared_statements" not in url.query
            and dialects.for_scheme(url.drivername).prepared_statements_option):
        url = url.update_query_dict({"prepared_statements": "true" if config.prepared_statements == "on" else "false"})
    return url


def create_database(config: ResolvedDatabase, settings: Settings) -> Database:
    url = connect_url(config)
    driver = dialects.for_url(url)
    # The database's own backstop for a transaction sqlgate would have ended (its idle
    # timeout) had its host not vanished: that timeout plus a margin.
    driver.idle_in_transaction_s = math.ceil(settings.transaction_idle_timeout_s) + IDLE_BACKSTOP_MARGIN_S
    policy = config.policy
    url = driver.engine_url(url, policy.read_only)  # SQLite read_only: mode=ro, never created
    kwargs: dict[str, Any] = {
        **driver.pool_kwargs(
            url, pool_size=config.pool_size, max_overflow=config.max_overflow,
            pool_timeout_s=settings.pool_timeout_s, pool_recycle_s=settings.pool_recycle_s,
        ),
        **driver.engine_kwargs(policy.read_only, policy.statement_timeout_ms),
    }
    if driver.connect_timeout_arg is not None:
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), driver.connect_timeout_arg: config.connect_timeout_s}
    if config.pool == "none" and not driver.private_memory(url):
        # Serverless: a connection per call, closed after it (no idle connection keeps a
        # scale-to-zero database awake or holds a pooler slot).
        for key in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle"):
            kwargs.pop(key, None)
        kwargs["poolclass"] = NullPool
    # The liveness check is the dialect's own (below), not SQLAlchemy's pre-ping: that is
    # three round trips on asyncpg, and a cancelled one waits for its ROLLBACK, past the
    # call's deadline on a slow link (db/boundary.py). A connection used moments ago costs
    # no round trip: the driver already knows if the server closed it (a restart, KILL,
    # an idle timeout); one idle for PING_AFTER_IDLE_S is pinged.
    ping_on_checkout = bool(kwargs.pop("pool_pre_ping", False))
    # The reset on return is ours too (below): a connection whose call left nothing open
    # (a plain read, db/guard.py) goes back without SQLAlchemy's ROLLBACK round trip.
    kwargs["pool_reset_on_return"] = None
    engine = create_async_engine(url, **kwargs)
    read_only, timeout_ms = policy.read_only, policy.statement_timeout_ms

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        driver.on_connect(dbapi_connection, read_only, timeout_ms)
        record.info["sqlgate_fresh"] = True  # just connected: no liveness check needed

    if ping_on_checkout:

        @event.listens_for(engine.sync_engine, "checkout")
        def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
            info = record.info
            if info.pop("sqlgate_fresh", False):
                return  # connected just now
            conn = dbapi_connection.driver_connection
            if not driver.socket_open(conn):  # it died in the pool: SQLAlchemy reconnects
                raise sa_exc.DisconnectionError("the server closed this pooled connection")
            if time.monotonic() - info.get("sqlgate_idle_since", 0.0) < PING_AFTER_IDLE_S:
                return
            try:
                await_(driver.ping(conn))
            except Exception as exc:
                raise sa_exc.DisconnectionError(str(exc)) from exc

        @event.listens_for(engine.sync_engine, "checkin")
        def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
            record.info["sqlgate_idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, record: Any, state: Any) -> None:
        if record is not None and record.info.pop(CLEAN_ON_RETURN, False):
            return  # the lease said nothing is left open on it (boundary.Lease.release)
        if state.terminate_only or not state.asyncio_safe or state.transaction_was_reset:
            return  # it is closed, not pooled / SQLAlchemy ended its transaction itself
        dbapi_connection.rollback()  # as SQLAlchemy's default reset does

    @event.listens_for(engine.sync_engine, "invalidate")
    def _on_invalidate(dbapi_connection: Any, _record: Any, _exc: Any) -> None:
        # Close the socket at once: SQLAlchemy's graceful close would wait up to 2 s on a
        # dead link (its own time limit), past the call's deadline (db/boundary.py).
        with contextlib.suppress(Exception):
            driver.abort(dbapi_connection.driver_connection)

    local_file = driver.local_file(url)
    if local_file is not None:  # sqlite:///x.db is relative to the working directory: say where
        log.info("SQLite database file", database=config.name, path=str(local_file.expanduser().resolve()))
    return Database(
        name=config.name,
        engine=engine,
        driver=driver,
        policy=policy,
        max_result_bytes=settings.max_result_bytes,
        max_value_bytes=settings.max_value_bytes,
        display_url=mask_secrets(url.render_as_string(hide_password=True)),
        demo=config.demo,
        pool_timeout_s=settings.pool_timeout_s,
        slow_query_s=settings.slow_query_ms / 1000,
        connect_retries=config.connect_retries,
    )


async def open_databases(settings: Settings) -> Databases:
    """Create every configured database's engine and learn what it needs at start-up."""
    opened: list[Database] = []
    try:
        for config in settings.resolved_databases():
            # A demo database is created by the caller (server lifespan, CLI) beforehand.
            database = create_database(config, settings)
            opened.append(database)
            try:
                await database.ensure_ready()
            except DatabaseUnavailable as error:
                # Serve anyway: health_check reports it, calls retry the set-up.
                log.warning(
                    "database unreachable at start-up; serving it anyway, set up on first use",
                    database=database.name, error=error.message,
                )
    except BaseException:
        await Databases(opened).close() if opened else None
        raise
    return Databases(opened)
