"""One fixture, three databases.

``backend`` is parametrized over sqlite, postgres and mysql (MariaDB). Each test session
gets its own fresh database on each server (``sqlgate_t_<random>``), dropped at the end,
so concurrent test runs never collide. Tests set up tables with ``backend.execute`` /
``await backend.aexecute`` (admin SQL that bypasses sqlgate) and talk to sqlgate through
a real MCP client: ``async with backend.client(**settings) as client``.

A server that is not reachable skips its tests with the reason, unless
``SQLGATE_TEST_REQUIRE_SERVICES=1`` (set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate.db.engines import async_url

REQUIRE = os.environ.get("SQLGATE_TEST_REQUIRE_SERVICES", "") not in ("", "0", "false")
PG_ADMIN = os.environ.get("SQLGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN = os.environ.get("SQLGATE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
BACKENDS = ("sqlite", "postgres", "mysql")
# One name per pytest process: under pytest-xdist (pytest -n auto) each worker is its own
# process, so each worker gets its own databases on the servers.
SESSION_TAG = f"sqlgate_t_{os.getpid()}_{secrets.token_hex(3)}"

# Tests write only under temporary directories: the user data/cache/config directories
# (HOME and platformdirs, e.g. ~/.local/share/sqlgate for the demo database and the audit file) of
# this process and of every sqlgate subprocess it starts point into a temporary home.
_TEST_HOME = Path(tempfile.mkdtemp(prefix="sqlgate-test-home-"))
for _variable in ("HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
    os.environ[_variable] = str(_TEST_HOME / _variable.lower())  # HOME: MCP stdio clients pass only it on
    (_TEST_HOME / _variable.lower()).mkdir()


@dataclass
class Backend:
    """A fresh database on one server, for one test session."""

    name: str  # sqlite | postgres | mysql
    url: str  # plain URL as a user would configure it
    dialect: str  # sqlglot dialect
    data_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    async def aexecute(self, *statements: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Run admin SQL directly (bypassing sqlgate); returns the last statement's rows."""
        engine = create_async_engine(async_url(self.url))
        rows: list[Any] = []
        try:
            async with engine.begin() as conn:
                for sql in statements:
                    result = await conn.execute(text(sql), params or {})
                    rows = list(result.fetchall()) if result.returns_rows else []
        finally:
            await engine.dispose()
        return rows

    def execute(self, *statements: str, params: dict[str, Any] | None = None) -> list[Any]:
        return asyncio.run(self.aexecute(*statements, params=params))

    def settings(self, **overrides: Any) -> Any:
        from sqlgate.settings import load_settings

        values: dict[str, Any] = {"database_url": self.url, "data_dir": str(self.data_dir)}
        values.update(overrides)
        return load_settings(values)

    def server(self, **overrides: Any) -> Any:
        from sqlgate.server.app import build_server

        return build_server(self.settings(**overrides))

    @asynccontextmanager
    async def client(self, **overrides: Any) -> AsyncIterator[Any]:
        """An in-memory MCP client session on a server for this database."""
        from mcp import Client

        async with Client(self.server(**overrides)) as client:
            yield client


def _unreachable(name: str, exc: BaseException) -> None:
    message = f"{name} is not reachable ({type(exc).__name__}: {exc}); start it or unset the test"
    if REQUIRE:
        pytest.fail(f"SQLGATE_TEST_REQUIRE_SERVICES is set but {message}", pytrace=False)
    pytest.skip(message)


async def _admin(kind: str, postgres_sql: str, mysql_sql: str) -> str:
    """Run one statement on the server's admin database; return the admin URL."""
    admin = PG_ADMIN if kind == "postgres" else MYSQL_ADMIN
    engine = create_async_engine(async_url(admin), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(postgres_sql if kind == "postgres" else mysql_sql))
    finally:
        await engine.dispose()
    return admin


async def _create_server_database(kind: str) -> str:
    admin = await _admin(
        kind, f'CREATE DATABASE "{SESSION_TAG}"', f"CREATE DATABASE `{SESSION_TAG}` CHARACTER SET utf8mb4"
    )
    return f"{admin.rsplit('/', 1)[0]}/{SESSION_TAG}"


async def _drop_server_database(kind: str) -> None:
    await _admin(
        kind, f'DROP DATABASE IF EXISTS "{SESSION_TAG}" WITH (FORCE)', f"DROP DATABASE IF EXISTS `{SESSION_TAG}`"
    )


_server_urls: dict[str, str | BaseException] = {}


def server_url(kind: str) -> str:
    """URL of this session's fresh database on the postgres or mysql server."""
    if kind not in _server_urls:
        try:
            _server_urls[kind] = asyncio.run(asyncio.wait_for(_create_server_database(kind), 15))
        except BaseException as exc:  # noqa: BLE001
            _server_urls[kind] = exc
    found = _server_urls[kind]
    if isinstance(found, BaseException):
        _unreachable(kind, found)
    return str(found)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import shutil

    shutil.rmtree(_TEST_HOME, ignore_errors=True)
    for kind, url in _server_urls.items():
        if isinstance(url, str):
            try:
                asyncio.run(_drop_server_database(kind))
            except Exception:  # noqa: BLE001 - best effort clean-up
                pass


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sqlgate-test-") as tmp:
        yield Path(tmp)


def make_backend(kind: str, data_dir: Path) -> Backend:
    if kind == "sqlite":
        path = data_dir / "test.sqlite3"
        # read_only opens the file mode=ro and never creates it (issue 13): make it exist.
        import sqlite3

        sqlite3.connect(path).close()
        return Backend("sqlite", f"sqlite:///{path}", "sqlite", data_dir)
    url = server_url(kind)
    return Backend(kind, url, "postgres" if kind == "postgres" else "mysql", data_dir)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, data_dir: Path) -> Backend:
    """Each test using it runs on sqlite, postgres and mysql."""
    return make_backend(request.param, data_dir)


@pytest.fixture(scope="session")
def sqlite_backend(data_dir: Path) -> Backend:
    return make_backend("sqlite", data_dir)


@pytest.fixture(scope="session")
def postgres_backend(data_dir: Path) -> Backend:
    return make_backend("postgres", data_dir)


@pytest.fixture(scope="session")
def mysql_backend(data_dir: Path) -> Backend:
    return make_backend("mysql", data_dir)


def unique(prefix: str) -> str:
    """A table name no other test uses."""
    return f"{prefix}_{secrets.token_hex(4)}"


def pytest_configure(config: pytest.Config) -> None:
    """``-n``: xdist's work-stealing scheduler instead of its default ("load", which hands
    each worker a fixed share up front): a worker that runs out steals from a busy one, so
    the few 5-15 s e2e tests no longer leave the others idle at the end (2 cores, 3
    workers: the suite ~3 min 45 s -> ~3 min 10 s). An explicit ``--dist`` other than load
    is kept."""
    if getattr(config.option, "dist", "no") == "load" and getattr(config.option, "numprocesses", None):
        config.option.dist = "worksteal"


@pytest.hookimpl(optionalhook=True)  # xdist's hook: without xdist (-p no:xdist) it is not known
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one and a half workers per core. Most tests wait on a database or a
    server subprocess rather than compute; on 2 cores 3 workers take the suite from ~3 min
    50 s to ~3 min (docs/contributing.md)."""
    return max(2, (os.cpu_count() or 1) * 3 // 2)
