"""MySQL, MariaDB and TiDB through aiomysql."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from sqlgate.db.dialects import (
    mysql_privileges,  # least privilege
    tls,  # connecting: TLS
)
from sqlgate.db.dialects.base import (
    BulkPlan,
    Counts,
    Dialect,
    RawResult,
    bind,
    busy,
    conflict,
    constraint_violation,
    db_error,
    db_write_refused,
    quoted,
    timeout_error,
    unavailable,
)
from sqlgate.db.dialects.plans import IndexSyntax, RawPlan, statement_limit  # query_optimization hooks
from sqlgate.db.dialects.tls import TlsStatus
from sqlgate.errors import ConfigError, DatabaseError, InvalidArgument, SqlgateError
from sqlgate.logging import mask_secrets

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from sqlgate.db.dialects.grants import GrantPlan
    from sqlgate.db.results import RowBudget


_BACKSLASH_ESCAPES_ON = (
    "SET SESSION sql_mode = TRIM(BOTH ',' FROM "
    "REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ','))"
)


class MySQLDialect(Dialect):
    name = "mysql"
    sqlglot_dialect = "mysql"
    async_driver = "mysql+aiomysql"
    connect_timeout_arg = "connect_timeout"
    # The third column: whether table and database names compare exactly
    # (lower_case_table_names=0, the Linux default: CUSTOMERS is not customers).
    facts_sql = "SELECT VERSION(), DATABASE(), @@lower_case_table_names = 0"
    # sqlgate's own fixed catalog statement, with bound values: it bypasses safety.check.
    row_estimate_sql = (
        "SELECT table_rows FROM information_schema.tables "
        "WHERE table_schema = COALESCE(:schema, DATABASE()) AND table_name = :name"
    )
    row_count_source = "information_schema.tables.table_rows estimate"

    _ISOLATION = {
        "read_committed": "READ COMMITTED",
        "repeatable_read": "REPEATABLE READ",
        "serializable": "SERIALIZABLE",
        "read_uncommitted": "READ UNCOMMITTED",
    }

    # --- connecting: TLS (the URL's options; end of this module)

    def validate_url(self, url: URL) -> None:
        if not url.database:
            raise ConfigError(
                "the MySQL URL names no database: "
                f"{mask_secrets(url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True))}",
                "add the database name after the host: mysql://user:pass@host:3306/DBNAME",
            )
        mysql_connect_options(url)

    def tls_status(self, conn: Any) -> TlsStatus | None:
        writer = getattr(conn, "_writer", None)
        return tls.status_of(writer.transport if writer is not None else None)

    def on_connect(self, dbapi_connection: Any, read_only: bool, timeout_ms: int) -> None:
        async def setup(conn: Any) -> None:
            async with conn.cursor() as cur:
                await cur.execute("SELECT VERSION()")
                (version,) = await cur.fetchone()
                conn._sqlgate_mariadb = "mariadb" in str(version).lower()
                if read_only:
                    await cur.execute("SET SESSION TRANSACTION READ ONLY")
                await cur.execute(_mysql_timeout_sql(conn._sqlgate_mariadb, timeout_ms))
                conn._sqlgate_timeout_ms = timeout_ms
                if conn._sqlgate_mariadb and self.idle_in_transaction_s:
                    # MariaDB ends a session idle inside a transaction this long (MySQL has no
                    # such setting; its wait_timeout would close idle pooled connections too).
                    await cur.execute(f"SET SESSION idle_transaction_timeout = {int(self.idle_in_transaction_s)}")
                # Backslash escapes on, as sqlgate reads and writes string literals
                # (safety.literals): the server's NO_BACKSLASH_ESCAPES would change their values.
                await cur.execute(_BACKSLASH_ESCAPES_ON)
            await conn.commit()
            # Autocommit: a lone read leaves no transaction (nor its snapshot and metadata
            # locks) open, so it needs no ROLLBACK after it; sqlgate's transactions are
            # explicit (START TRANSACTION ... COMMIT / ROLLBACK).
            await conn.autocommit(True)

        dbapi_connection.run_async(setup)

    async def prepare_read(self, conn: Any, timeout_ms: int) -> None:
        # An earlier call may have left another session timeout on this connection.
        if getattr(conn, "_sqlgate_timeout_ms", None) != timeout_ms:
            async with conn.cursor() as cur:
                await cur.execute(_mysql_timeout_sql(getattr(conn, "_sqlgate_mariadb", True), timeout_ms))
            conn._sqlgate_timeout_ms = timeout_ms

    async def begin(
        self, conn: Any, *, read_only: bool, isolation: str | None, timeout_ms: int, default_timeout_ms: int
    ) -> Any:
        await self.prepare_read(conn, timeout_ms)
        async with conn.cursor() as cur:
            if isolation:
                await cur.execute(f"SET TRANSACTION ISOLATION LEVEL {self._ISOLATION[isolation]}")
            await cur.execute("START TRANSACTION READ ONLY" if read_only else "START TRANSACTION")
        return None

    async def commit(self, conn: Any, state: Any) -> None:
        await conn.commit()

    async def rollback(self, conn: Any, state: Any) -> None:
        await conn.rollback()

    async def execute(
        self, conn: Any, statement: exp.Expr, params: dict[str, Any], budget: RowBudget, timeout_ms: int
    ) -> RawResult:
        # pymysql/aiomysql always interpolate parameters on the client; doing it here
        # with the driver's own escaping is the same thing, minus its %-formatting.
        import aiomysql

        sql = bind(statement, "mysql", params, lambda name: mysql_literal(conn, params[name]))
        # Unbuffered: rows are read off the socket as they are fetched, chunk by chunk.
        cur = await conn.cursor(aiomysql.SSCursor)
        unread = False
        try:
            await asyncio.wait_for(cur.execute(sql), timeout=timeout_ms / 1000 + 2)
            if cur.description is None:
                return RawResult([], [], cur.rowcount, False)
            columns = [d[0] for d in cur.description]
            while True:
                wanted = budget.chunk(first=1)
                chunk = await cur.fetchmany(wanted)
                if not budget.take(chunk) or len(chunk) < wanted:
                    break
            # Closing an unbuffered cursor reads the rest of the result. Past the byte
            # budget outside a transaction, the boundary stops the statement instead
            # (KILL QUERY) and drops the connection; otherwise the rest is read and
            # dropped row by row (bounded by the row cap).
            unread = budget.truncated_by == "max_result_bytes" and not conn.get_transaction_status()
            return RawResult(columns, budget.rows, cur.rowcount, budget.more, unread=unread)
        except BaseException as exc:
            # Unless the server reported the error, the boundary stops the statement and
            # drops the connection: reading the rest of the result here waited on a silent
            # link, and on a connection aiomysql had already closed it raised AttributeError
            # ('NoneType' object has no attribute 'readexactly') over the real error.
            if not self.answered(exc):
                unread = True
            raise
        finally:
            if not unread:
                await cur.close()

    # --- errors and cancellation (the execution boundary, db/boundary.py)

    def map_error(self, exc: BaseException, timeout_ms: int) -> SqlgateError:
        import pymysql

        if isinstance(exc, pymysql.err.InterfaceError):  # (0, ''): the socket is gone
            return unavailable(f"the database connection failed: {exc}")
        if isinstance(exc, pymysql.err.MySQLError) and exc.args:
            code = exc.args[0]
            text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
            if code in (1969, 3024, 1317):  # statement timeout (MariaDB, MySQL), interrupted
                return timeout_error(timeout_ms)
            if code in (1792, 1290):  # read-only transaction / --read-only server
                return db_write_refused(text)
            if code in _MYSQL_UNAVAILABLE or (isinstance(code, int) and 2000 <= code < 3000):
                return unavailable(f"the database connection ended: {text} (error {code})")
            if code in (1205, 3572):  # lock wait timeout, NOWAIT
                return busy(f"{text} (error {code})")
            if code in (1213, 1020, 3101):  # deadlock, record changed (MariaDB), rollback-only
                return conflict(f"{text} (error {code})")
            if code in _MYSQL_CONSTRAINT:
                return constraint_violation(text, f"error {code}")
            if code in _MYSQL_BAD_VALUE:  # a value (often a parameter) that does not fit its column
                return InvalidArgument(
                    f"a value does not fit its column's type: {text} (error {code})",
                    "pass a value of the column's type (objects and arrays travel as JSON text; "
                    "numbers within the column's range; text within its length)",
                )
            return db_error(text, str(code))
        return super().map_error(exc, timeout_ms)

    def answered(self, exc: BaseException | None) -> bool:
        import pymysql

        if not isinstance(exc, pymysql.err.MySQLError) or isinstance(exc, pymysql.err.InterfaceError):
            return False
        code = exc.args[0] if exc.args else None
        return isinstance(code, int) and 1000 <= code < 2000 and code not in _MYSQL_UNAVAILABLE

    async def cancel(self, conn: Any, engine: Any) -> None:
        # A MySQL statement ends only from the server side: KILL QUERY on a second
        # connection (the pool may be exhausted or dead, so a fresh one, not pooled).
        import aiomysql

        thread_id = int(conn.server_thread_id[0])
        args, kwargs = engine.sync_engine.dialect.create_connect_args(engine.url)
        killer = await aiomysql.connect(*args, **{**kwargs, "connect_timeout": 2})
        try:
            async with killer.cursor() as cur:
                await cur.execute(f"KILL QUERY {thread_id}")
                # A timeout is a stop: drop our socket, then if the thread still runs a
                # statement after STOP_GRACE_S, end the whole connection server-side.
                self.abort(conn)
                loop = asyncio.get_running_loop()
                until = loop.time() + STOP_GRACE_S
                while True:
                    await cur.execute(
                        "SELECT COMMAND FROM information_schema.PROCESSLIST WHERE ID = %s", (thread_id,)
                    )
                    row = await cur.fetchone()
                    if row is None or str(row[0]) not in ("Query", "Execute", "Killed"):
                        return
                    if loop.time() >= until:
                        break
                    await asyncio.sleep(0.1)
                with contextlib.suppress(Exception):  # it may have ended meanwhile (unknown thread)
                    await cur.execute(f"KILL CONNECTION {thread_id}")
        finally:
            killer.close()

    async def ping(self, conn: Any) -> None:
        await conn.ping(reconnect=False)  # COM_PING: one round trip

    def socket_open(self, conn: Any) -> bool:
        # aiomysql reads through an asyncio StreamReader: the server's end of the stream
        # (KILL, wait_timeout, a restart) is fed to it even while nothing is read, and an
        # idle connection has nothing unread unless the server sent an error before closing.
        # A reset (RST) is fed to it as an exception instead.
        reader = getattr(conn, "_reader", None)
        return reader is not None and not getattr(reader, "_eof", False) \
            and reader.exception() is None and not getattr(reader, "_buffer", b"")

    def abort(self, conn: Any) -> None:
        conn.close()  # aiomysql: closes the transport, no COM_QUIT round trip

    async def round_trip(self, conn: Any, name: str, steps: list[str], read_only: bool) -> bool:
        async with conn.cursor() as cur:
            # START TRANSACTION READ WRITE overrides the read-only session default.
            await cur.execute("START TRANSACTION READ WRITE")
            # No implicit commit for TEMPORARY tables; the rows below are rolled back.
            await cur.execute(f"CREATE TEMPORARY TABLE {name} (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB")
            steps.append("create")
            await cur.execute(f"INSERT INTO {name} (id, note) VALUES (1, 'a'), (2, 'b')")
            steps.append("insert")
            await cur.execute(f"SELECT COUNT(*) FROM {name}")
            if (await cur.fetchone())[0] != 2:
                raise RuntimeError("select did not see the inserted rows")
            steps.append("select")
            if await cur.execute(f"UPDATE {name} SET note = 'c' WHERE id = 1") != 1:
                raise RuntimeError("update did not change one row")
            steps.append("update")
            if await cur.execute(f"DELETE FROM {name} WHERE id = 2") != 1:
                raise RuntimeError("delete did not remove one row")
            steps.append("delete")
            await conn.rollback()
            steps.append("rollback")
            # A MySQL temporary table lives until the session ends (the connection is
            # discarded next); what must not persist are the rows.
            await cur.execute(f"SELECT COUNT(*) FROM {name}")
            leftover = (await cur.fetchone())[0]
            await conn.rollback()
            await cur.execute("START TRANSACTION READ WRITE")
            await cur.execute(f"DROP TEMPORARY TABLE {name}")  # not transactional, no implicit commit
            await conn.rollback()
        return bool(leftover)

    # --- least privilege (db/privileges.py; the SQL lives in mysql_privileges.py)

    def grant_statements(self, plan: GrantPlan) -> list[str] | None:
        return mysql_privileges.grant_statements(plan)

    async def privilege_findings(self, conn: Any, plan: GrantPlan) -> list[str] | None:
        return await mysql_privileges.privilege_findings(conn, plan)

    # ------------------------------------------------------------- bulk insert
    # Multi-row VALUES with the driver's own escaping (what pymysql's executemany does),
    # INSERT IGNORE / ON DUPLICATE KEY UPDATE; counts from the server's
    # "Records: N  Duplicates: D" info and the affected-rows count.

    def add_conflict_clause(
        self, statement: exp.Insert, on_conflict: str, conflict_columns: Sequence[str], update_columns: Sequence[str]
    ) -> None:
        upsert = on_conflict == "update" and bool(update_columns)
        if on_conflict == "ignore" or (on_conflict == "update" and not upsert):
            statement.set("ignore", True)
        elif upsert:
            # VALUES(col) is the row that was refused: MariaDB and MySQL both accept it.
            sets = [
                exp.EQ(this=exp.column(quoted(c)), expression=exp.Anonymous(this="VALUES", expressions=[quoted(c)]))
                for c in update_columns
            ]
            statement.set("conflict", exp.OnConflict(duplicate=True, expressions=sets, action=exp.var("UPDATE")))

    async def insert_rows(self, plan: BulkPlan, conn: Any, rows: list[tuple[Any, ...]], timeout_s: float) -> Counts:
        from pymysql.constants import CLIENT

        prefix, suffix = plan.row_template(lambda i: "%s")
        found_rows = bool(getattr(conn, "client_flag", 0) & CLIENT.FOUND_ROWS)
        counts = Counts()
        cur = await conn.cursor()
        try:
            batch: list[str] = []
            size = len(prefix) + len(suffix)
            for index, row in enumerate(rows):
                text = "(" + ",".join(mysql_literal(conn, v) for v in row) + ")"
                batch.append(text)
                size += len(text) + 1
                if size >= _MYSQL_MAX_STATEMENT or index == len(rows) - 1:
                    await asyncio.wait_for(cur.execute(prefix + ",".join(batch) + suffix), timeout=timeout_s)
                    done = _mysql_counts(plan, len(batch), cur, found_rows)
                    if not plan.upsert and plan.on_conflict != "error":
                        await _mysql_check_ignore(cur, done.skipped)
                    counts.add(done)
                    batch, size = [], len(prefix) + len(suffix)
        finally:
            await cur.close()
        return counts

    # --- plans and index advice (query_optimization) -------------------------------
    # EXPLAIN FORMAT=JSON (MariaDB: ANALYZE FORMAT=JSON for actuals; MySQL 8: EXPLAIN
    # ANALYZE's tree text), TiDB's EXPLAIN rows. No hypothetical indexes exist here and
    # sqlgate never changes a schema, so index advice stays unverified.

    async def explain(
        self, conn: Any, statement: exp.Expr, params: dict[str, Any], *, analyze: bool, timeout_ms: int,
        server_version: str, generic: bool = False,
    ) -> RawPlan:
        sql = bind(statement, "mysql", params, lambda name: mysql_literal(conn, params[name]))
        version = server_version.lower()
        if "tidb" in version:
            rows = await _mysql_rows(conn, ("EXPLAIN ANALYZE " if analyze else "EXPLAIN ") + sql, timeout_ms)
            return RawPlan("tidb-rows", rows, analyze)
        if "mariadb" in version:
            if analyze:
                rows = await _mysql_rows(conn, "ANALYZE FORMAT=JSON " + sql, timeout_ms)
                return RawPlan("mariadb-json", json.loads(rows[0][0]), True, limit=statement_limit(statement))
            rows = await _mysql_rows(conn, "EXPLAIN FORMAT=JSON " + sql, timeout_ms)
            return RawPlan("mariadb-json", json.loads(rows[0][0]), False)
        rows = await _mysql_rows(conn, "EXPLAIN FORMAT=JSON " + sql, timeout_ms)
        plan = RawPlan("mysql-json", json.loads(rows[0][0]), analyze)
        if analyze:
            tree = await _mysql_rows(conn, "EXPLAIN ANALYZE " + sql, timeout_ms)
            plan.analyze_text = str(tree[0][0]) if tree else ""
        return plan

    async def table_rows(self, conn: Any, schema: str | None, name: str) -> float | None:
        try:
            async with conn.cursor() as cur:
                await cur.execute(
                    "SELECT TABLE_ROWS FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s",
                    (schema, name),
                )
                row = await cur.fetchone()
        except Exception:  # noqa: BLE001 - no estimate for this table
            return None
        return float(row[0]) if row and row[0] is not None else None

    def index_syntax(self, server_version: str) -> IndexSyntax:
        # Functional key parts ((expr)) arrived in MySQL 8.0.13; MariaDB and TiDB index
        # generated columns instead. TEXT/BLOB need a prefix (191 characters fit utf8mb4).
        version = server_version.lower()
        numbers = [int(n) for n in re.findall(r"\d+", version.split("-")[0])[:3]]
        functional = "mariadb" not in version and "tidb" not in version and tuple(numbers) >= (8, 0, 13)
        return IndexSyntax(expressions=functional, expression_parens=True, prefix_like="plain", text_prefix=191)

    # --- end of plans and index advice


async def _mysql_rows(conn: Any, sql: str, timeout_ms: int) -> list[tuple[Any, ...]]:
    async with conn.cursor() as cur:
        await asyncio.wait_for(cur.execute(sql), timeout=timeout_ms / 1000 + 2)
        return list(await cur.fetchall())


STOP_GRACE_S = 2.0  # after KILL QUERY, before KILL CONNECTION
_MYSQL_MAX_STATEMENT = 1_000_000  # bytes per statement, below the default max_allowed_packet
_MYSQL_INFO = re.compile(rb"Records:\s*(\d+)\s+Duplicates:\s*(\d+)")


async def _mysql_check_ignore(cur: Any, skipped: int) -> None:
    """INSERT IGNORE also turns errors into warnings (a NULL into NOT NULL, a value too
    long, a bad date...) and stores something else. sqlgate ignores duplicate keys only:
    each skipped row leaves one warning; any more and the statement changed data."""
    warnings = getattr(getattr(cur, "_result", None), "warning_count", 0) or 0
    if warnings <= skipped:
        return
    await cur.execute("SHOW WARNINGS")
    found = await cur.fetchall()
    other = [str(w[2]) for w in found if len(w) > 2 and w[1] != 1062]
    raise DatabaseError(
        "the database would have stored changed values under INSERT IGNORE: "
        + ("; ".join(other[:3]) or f"{warnings - skipped} warning(s) besides duplicate keys"),
        "fix the records (lengths, NOT NULL columns, value types); nothing of this call was kept",
    )


def _mysql_counts(plan: BulkPlan, sent: int, cur: Any, found_rows: bool) -> Counts:
    affected = max(cur.rowcount or 0, 0)
    if plan.on_conflict == "error":
        return Counts(inserted=affected)
    if not plan.upsert:  # INSERT IGNORE: one affected row per inserted row
        return Counts(inserted=affected, skipped=sent - affected)
    message = getattr(getattr(cur, "_result", None), "message", b"") or b""
    info = _MYSQL_INFO.search(message)
    if info:
        duplicates = int(info.group(2))
        return Counts(inserted=sent - duplicates, updated=duplicates)
    # One row: no info message. 2 = updated, 1 = inserted (or, with the FOUND_ROWS flag
    # SQLAlchemy sets, found with equal values: reported as inserted; see README).
    if affected == 2 or (affected == 0 and not found_rows):
        return Counts(updated=sent)
    return Counts(inserted=sent)


def _mysql_timeout_sql(mariadb: bool, timeout_ms: int) -> str:
    if mariadb:
        # MariaDB: applies to every statement, in seconds.
        return f"SET SESSION max_statement_time = {timeout_ms / 1000:.3f}"
    # MySQL: applies to SELECT only; the client-side backstop covers the rest.
    return f"SET SESSION max_execution_time = {int(timeout_ms)}"


def mysql_literal(conn: Any, value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(conn.escape(value))


# Killed connection (MariaDB 1927, MySQL 3169), server shutdown, too many connections,
# aborted connection, client disconnected for inactivity; 2xxx are client-side losses.
_MYSQL_UNAVAILABLE = frozenset({1927, 3169, 1053, 1040, 1152, 1184, 4031})
# Incorrect value for a column's type, out of range, data too long, truncated incorrect value.
_MYSQL_BAD_VALUE = frozenset({1366, 1264, 1406, 1292})
# Duplicate key, foreign key (both ways), NOT NULL, no default, CHECK (MySQL, MariaDB).
_MYSQL_CONSTRAINT = frozenset({1062, 1586, 1169, 1451, 1452, 1216, 1217, 1048, 1364, 3819, 4025, 1557})


# ------------------------------------------------------------------ connecting: TLS
# The URL spells TLS the MySQL way: ssl-mode / ssl_mode (DISABLED, PREFERRED, REQUIRED,
# VERIFY_CA, VERIFY_IDENTITY), ssl=true, ssl_ca, ssl_cert, ssl_key (also PyMySQL's
# ssl_verify_cert / ssl_verify_identity and Prisma's sslaccept=strict). aiomysql would
# quietly stay in plaintext when the server offers no TLS; a mode that asks for TLS uses
# a connection that refuses such a server before it sends any credentials.

MYSQL_SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
MYSQL_URL_OPTIONS = (
    "ssl-mode", "ssl_mode", "sslmode", "ssl", "ssl_ca", "ssl-ca", "ssl_cert", "ssl-cert", "ssl_key", "ssl-key",
    "ssl_verify_cert", "ssl_verify_identity", "ssl_check_hostname", "sslaccept",
)

# Passed on to aiomysql / SQLAlchemy as they are.
MYSQL_DRIVER_OPTIONS = ("charset", "connect_timeout", "local_infile", "use_unicode", "init_command", "program_name")


def mysql_ssl_mode(url: URL) -> str | None:
    query = url.query
    for key in ("ssl-mode", "ssl_mode", "sslmode"):
        value = tls.one(query, key)
        if value is not None:
            return tls.choice(key, value.replace("-", "_"), MYSQL_SSL_MODES)
    accept = tls.one(query, "sslaccept")
    if accept is not None:
        return "VERIFY_IDENTITY" if tls.choice("sslaccept", accept, ("strict", "accept_invalid_certs")) == "strict" \
            else "REQUIRED"
    if tls.flag(query, "ssl_verify_identity") or tls.flag(query, "ssl_check_hostname"):
        return "VERIFY_IDENTITY"
    if tls.flag(query, "ssl_verify_cert"):
        return "VERIFY_CA"
    ssl = tls.flag(query, "ssl")
    if ssl is False:
        return "DISABLED"
    if _mysql_file(query, "ca") is not None:
        return "VERIFY_CA"  # a CA bundle given: verify the chain (as the mysql client does)
    return "REQUIRED" if ssl else None


def _mysql_file(query: Any, what: str) -> str | None:
    return tls.one(query, f"ssl_{what}") or tls.one(query, f"ssl-{what}")


def mysql_connect_options(url: URL) -> dict[str, Any]:
    """aiomysql connect arguments for the URL's TLS options (ConfigError for a misspelled
    mode or an unreadable certificate file)."""
    query = url.query
    tls.refuse_unknown(query, MYSQL_URL_OPTIONS + MYSQL_DRIVER_OPTIONS, "MySQL")
    mode = mysql_ssl_mode(url)
    ca, cert, key = _mysql_file(query, "ca"), _mysql_file(query, "cert"), _mysql_file(query, "key")
    if mode is None or mode == "DISABLED":
        if mode == "DISABLED" and (ca or cert):
            raise ConfigError("ssl-mode=DISABLED contradicts the certificates given in the URL",
                              "drop ssl_ca/ssl_cert, or use ssl-mode=VERIFY_IDENTITY")
        return {}
    # PREFERRED is aiomysql's own behaviour: TLS when the server offers it.
    return {"ssl": tls.context(
        verify_cert=mode in ("VERIFY_CA", "VERIFY_IDENTITY"), verify_host=mode == "VERIFY_IDENTITY",
        ca=ca, cert=cert, key=key, param="ssl_ca", required=mode != "PREFERRED",
    )}


async def _connect_tls_required(**kwargs: Any) -> Any:
    import aiomysql

    class TlsRequiredConnection(aiomysql.Connection):  # type: ignore[misc]
        async def _request_authentication(self) -> None:
            from pymysql.constants import CLIENT
            from pymysql.err import OperationalError

            if not self.server_capabilities & CLIENT.SSL:
                raise OperationalError(
                    2026, "TLS was required (ssl-mode/ssl in the URL) but the server does not offer TLS; "
                    "nothing was sent in plaintext",
                )
            await super()._request_authentication()

    conn = TlsRequiredConnection(**kwargs)
    try:
        await conn._connect()
    except Exception as exc:
        # aiomysql reports a failed handshake as "Can't connect to MySQL server": name it.
        if isinstance(exc.__cause__, ssl.SSLError):
            from pymysql.err import OperationalError

            raise OperationalError(2026, f"TLS handshake failed: {exc.__cause__}") from exc
        raise
    return conn


@functools.cache
def _aiomysql_dialect() -> Any:
    from sqlalchemy.dialects.mysql.aiomysql import MySQLDialect_aiomysql

    Base: Any = MySQLDialect_aiomysql

    class SqlgateAiomysqlDialect(Base):  # type: ignore[misc]
        """SQLAlchemy's aiomysql dialect reading the URL's TLS options: every engine sqlgate
        creates (pool, health probes, audit sink, migrations, KILL QUERY connections) gets
        them from the URL alone. Registered as ``mysql+aiomysql`` (dialects/__init__.py)."""

        supports_statement_cache = True  # nothing here changes how SQL is compiled

        def create_connect_args(self, url: URL, _translate_args: Any = None) -> Any:
            args, opts = super().create_connect_args(url.difference_update_query(MYSQL_URL_OPTIONS))
            opts.update(mysql_connect_options(url))
            return args, opts

        def connect(self, *cargs: Any, **cparams: Any) -> Any:
            if isinstance(cparams.get("ssl"), tls.RequiredContext):
                cparams.setdefault("async_creator_fn", _connect_tls_required)
            return super().connect(*cargs, **cparams)

    return SqlgateAiomysqlDialect


def __getattr__(name: str) -> Any:
    # SQLAlchemy's registry loads ``SqlgateAiomysqlDialect`` from this module by name
    # (dialects/__init__.py): SQLAlchemy's MySQL dialect is imported
    # when an engine needs it, not whenever sqlgate starts.
    if name == "SqlgateAiomysqlDialect":
        return _aiomysql_dialect()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


