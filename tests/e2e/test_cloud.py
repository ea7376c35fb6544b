"""Cloud databases as their URLs come, end to end: URL hygiene (exit 2 with a one-line fix,
never a traceback), no silent fallbacks (``sqlgate health`` without a database, unknown
``SQLGATE_*`` variables), the SQLite path printed at start-up, NullPool (a connection per
call) and connect retries inside the call's deadline (a database that starts accepting
after 2 s)."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from sqlgate.db import boundary
from sqlgate.db.engines import create_database
from sqlgate.errors import DatabaseUnavailable
from tests.conftest import Backend, make_backend
from tests.db.proxy import Proxy


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def sqlgate(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SQLGATE_") and k != "DATABASE_URL"}
    clean["SQLGATE_DATA_DIR"] = str(cwd / "data")
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "sqlgate", *args], capture_output=True, text=True,
                          timeout=timeout, env=clean, cwd=cwd, check=False)


BAD_URLS = {
    "sqlite://x.db": "write sqlite:///relative.db or sqlite:////absolute.db",
    "mysql://root@127.0.0.1:3306": "names no database",
    "postgresql+psycopg2://u@localhost/db": "write postgresql://",
    "mysql+mysqldb://u@localhost/db": "write mysql://",
    "postgresql://u@localhost/db?sslmode=requre": "did you mean sslmode=require?",
    "mysql://u@localhost/db?ssl-mode=REQUIRE": "did you mean ssl-mode=REQUIRED?",
    "postgresql://u@localhost/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem": "/nonexistent/ca.pem does not exist",
    "mysql://u@localhost/db?ssl=maybe": "is not a boolean",
    "postgresql://u@localhost/db?sslmod=require": "(did you mean sslmode?)",
    "postgresql://u@localhost/db?sslmode=require&channel_binding=require": "cannot be honoured",
    "mysql://u@localhost/db?sslmode=REQUIRED&foo=1": "unsupported parameter 'foo' in the MySQL URL",
}


async def test_libpq_parameters_of_provider_urls_reach_the_server(postgres_backend: Backend) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from sqlgate.db import dialects

    url = postgres_backend.url + "?application_name=from-url&connect_timeout=5&channel_binding=prefer&sslmode=disable"
    engine = create_async_engine(dialects.check_url(url))
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT current_setting('application_name')"))).scalar() == "from-url"
    finally:
        await engine.dispose()


@pytest.fixture
def in_process_cli() -> Iterator[None]:
    """``cli.main`` configures logging to the captured stderr: put the process's back after
    (a logger first used meanwhile would keep the closed stream: only URL checks run here)."""
    import logging

    import structlog

    saved, handlers, level = structlog.get_config(), logging.getLogger().handlers[:], logging.getLogger().level
    yield
    structlog.configure(**saved)
    logging.getLogger().handlers[:] = handlers
    logging.getLogger().setLevel(level)


@pytest.mark.usefixtures("in_process_cli")
def test_each_bad_url_exits_2_with_its_one_line_fix(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sqlgate.cli import main

    for key in [k for k in os.environ if k.startswith("SQLGATE_") or k == "DATABASE_URL"]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SQLGATE_DATA_DIR", str(tmp_path))
    for url, fix in BAD_URLS.items():
        assert main(["health", "--database-url", url]) == 2, url
        err = capsys.readouterr().err
        first = err.splitlines()[0]
        assert first.startswith("sqlgate: ") and fix in first, (url, err)
        assert "Traceback" not in err and len(err.splitlines()) == 2, err  # the message and its hint


def test_serve_with_a_bad_url_exits_2_without_a_traceback(tmp_path: Path) -> None:
    done = sqlgate("serve", cwd=tmp_path, env={"DATABASE_URL": "sqlite://x.db"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[0] == (
        "sqlgate: sqlite://x.db names a host, not a file: write sqlite:///relative.db or sqlite:////absolute.db"
    )
    assert "Traceback" not in done.stderr


def test_health_without_a_database_exits_2_naming_the_misspelled_variable(tmp_path: Path) -> None:
    # A CI job with a typo in the variable name must fail, not check the demo.
    done = sqlgate("health", cwd=tmp_path, env={"SQLGATE_DATABSE_URL": "sqlite:///x.db"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "sqlgate: no database configured; pass --database-url, or --demo to check the demo" in done.stderr
    assert "SQLGATE_DATABSE_URL" in done.stderr and "did you mean SQLGATE_DATABASE_URL?" in done.stderr
    demo = sqlgate("health", "--demo", cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "demo: healthy" in demo.stdout


def test_the_resolved_sqlite_path_is_printed_at_start_up(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "rel.db").close()
    done = sqlgate("health", "--database-url", "sqlite:///rel.db", "--log-level", "INFO", "--no-stats", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "SQLite database file" in done.stderr and str((tmp_path / "rel.db").resolve()) in done.stderr


def test_sslmode_in_a_provider_url_no_longer_crashes(postgres_backend: Backend, tmp_path: Path) -> None:
    # The form Neon, Supabase, Heroku and RDS document; the local server has no TLS.
    done = sqlgate("health", "--database-url", postgres_backend.url + "?sslmode=prefer", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "tls: NOT encrypted" in done.stdout
    required = sqlgate("health", "--database-url", postgres_backend.url + "?sslmode=require", cwd=tmp_path)
    assert required.returncode == 2 and "rejected SSL upgrade" in required.stdout, required.stdout


# ------------------------------------------------------------- serverless pools


def connects(database: Any) -> list[int]:
    seen: list[int] = []
    event.listen(database.engine.sync_engine, "connect", lambda *_: seen.append(1))
    return seen


async def five_calls(database: Any) -> None:
    for _ in range(5):
        async with boundary.call(database, 5000) as lease:
            await database.driver.ping(lease.conn)


@pytest.fixture(scope="module", params=["postgres", "mysql"])
def network_backend(request: pytest.FixtureRequest, data_dir: Path) -> Backend:
    return make_backend(request.param, data_dir)


async def test_pool_none_opens_a_connection_per_call(network_backend: Backend) -> None:
    backend = network_backend
    for pool, expected in (("none", 5), ("queue", 1)):
        settings = backend.settings(pool=pool)
        database = create_database(settings.resolved_databases()[0], settings)
        try:
            assert isinstance(database.engine.pool, NullPool) is (pool == "none")
            seen = connects(database)
            await five_calls(database)
            assert len(seen) == expected, (pool, len(seen))
            assert database.pool_stats().checked_out == 0
        finally:
            await database.engine.dispose()


class LateProxy(Proxy):
    """A TCP proxy that starts listening on a fixed port only after ``delay_s``."""

    def start_at(self, port: int, delay_s: float) -> LateProxy:
        self.port = port
        self._thread.start()

        def later() -> None:
            time.sleep(delay_s)
            self._server = asyncio.run_coroutine_threadsafe(
                asyncio.start_server(self._accept, "127.0.0.1", port), self._loop
            ).result(5)

        threading.Thread(target=later, daemon=True).start()
        return self


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_database_accepting_after_2_s_is_reached_within_the_deadline(network_backend: Backend) -> None:
    backend = network_backend
    target = make_url(backend.url)
    proxy = LateProxy(target.host or "127.0.0.1", target.port or (5432 if backend.name == "postgres" else 3306))
    proxy.start_at(free_port(), 2.0)
    try:
        url = proxy.url(backend.url)
        # Without retries: refused at once.
        settings = backend.settings(database_url=url, connect_retries=0, pool="none")
        database = create_database(settings.resolved_databases()[0], settings)
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            async with boundary.call(database, 8000) as lease:
                await database.driver.ping(lease.conn)
        assert time.monotonic() - started < 1.5
        await database.engine.dispose()
        # With retries (backoff + jitter): reached once it listens, inside the 8 s deadline.
        settings = backend.settings(database_url=url, connect_retries=20, pool="none")
        database = create_database(settings.resolved_databases()[0], settings)
        async with boundary.call(database, 8000) as lease:
            await database.driver.ping(lease.conn)
        elapsed = time.monotonic() - started
        assert 1.8 <= elapsed < 8.5, elapsed
        await database.engine.dispose()
    finally:
        if proxy._server is not None:
            proxy.stop()


async def test_retries_stop_at_the_deadline(postgres_backend: Backend) -> None:
    port = free_port()  # nothing ever listens here
    url = make_url(postgres_backend.url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    settings = postgres_backend.settings(database_url=url, connect_retries=20)
    database = create_database(settings.resolved_databases()[0], settings)
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseUnavailable):
            async with boundary.call(database, 1500) as lease:
                await database.driver.ping(lease.conn)
        assert time.monotonic() - started < 3.0
    finally:
        await database.engine.dispose()
