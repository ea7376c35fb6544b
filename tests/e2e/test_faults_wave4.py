"""Fault injection, wave 4: the audit log and result fetches under faults, through a real
MCP client on a real server.

* The audit sink's own failures (disk full, the file locked by another process, a sink
  that stops answering, the data directory deleted while serving) are the sink's, never a
  record's: records are kept and retried, ``health_check`` says ``broken``, nothing is
  skipped as "refused", the writer never waits for ever, shutdown stays bounded, and the
  log recovers when the fault clears (docs/operations.md, "A broken sink never fails a
  tool call").
* A link that goes silent or is cut in the middle of a long result fetch: the call answers
  within its deadline with TIMEOUT / DB_UNAVAILABLE (PostgreSQL waited for ever on a
  ROLLBACK; MariaDB answered DB_ERROR "'NoneType' object has no attribute 'readexactly'"),
  and the next call works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from sqlgate import audit, migrations
from tests.conftest import Backend
from tests.db.proxy import Proxy
from tests.e2e.serving import spawn, terminate
from tests.e2e.test_redteam_wave3_transport import SQLGATE, clean_env, free_port, handshake, query_line


async def audit_status(client: Any) -> dict[str, Any]:
    report = (await client.call_tool("health_check", {})).structured_content
    return dict(report["audit"]) | {"status": report["status"]}


async def until(client: Any, check: Any, within_s: float) -> dict[str, Any]:
    """Poll the audit status until ``check(status)`` holds; return the last status."""
    end = time.monotonic() + within_s
    status = await audit_status(client)
    while not check(status) and time.monotonic() < end:
        await asyncio.sleep(0.2)
        status = await audit_status(client)
    return status


def rows_with(path: Path, marker: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM sqlgate_audit WHERE sql_text LIKE ?", (f"%{marker}%",)).fetchone()[0])
    finally:
        conn.close()


async def calls(client: Any, marker: str, count: int, pad: int = 0) -> None:
    for i in range(count):
        result = await client.call_tool("execute_query", {"query": f"SELECT {i} AS i, '{'p' * pad}' AS {marker}"})
        assert not result.is_error, result.content


# ----------------------------------------------------------------------- audit: disk full


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (root only: elsewhere the test is skipped)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


async def test_audit_on_a_full_disk_keeps_the_records_and_writes_them_once_there_is_room(
    sqlite_backend: Backend, small_fs: Path
) -> None:
    """Regression: on a full disk every record was "refused for what it holds", skipped and
    counted as rejected (lost), the audit state stayed ok and health_check healthy (the
    liveness probe, a read, works on a full disk)."""
    marker = f"full_{secrets.token_hex(3)}"
    async with sqlite_backend.client(data_dir=str(small_fs)) as client:
        await calls(client, "warm", 1)
        await until(client, lambda s: s["written"] >= 1, 5)
        filler = fill(small_fs)
        await calls(client, marker, 10, pad=3000)
        status = await until(client, lambda s: s["state"] == "broken", 8)
        assert status["state"] == "broken" and status["status"] == "degraded", status
        assert status.get("rejected", 0) == 0 and status["pending_retry"] + status["queued"] >= 10, status
        filler.unlink()
        status = await until(client, lambda s: s["state"] == "ok" and s["pending_retry"] == 0, 8)
        assert status["state"] == "ok", status
    assert rows_with(small_fs / "audit.sqlite3", marker) == 10


# ------------------------------------------------------------------- audit: a locked file


async def test_audit_file_locked_by_another_process_keeps_records_and_shutdown_is_bounded(
    sqlite_backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: "database is locked" (another process holding the file) counted each
    record as refused and skipped it, 5 s apiece (the busy timeout), so a shutdown with the
    lock held ran into the 15 s flush limit; on stdio the process then never exited (the
    cancelled write left aiosqlite's worker thread running)."""
    # The same story at a tenth of the waits (busy timeout 5 s, write limit 10 s).
    monkeypatch.setattr(audit, "SQLITE_BUSY_S", 0.5)
    monkeypatch.setattr(audit, "WRITE_TIMEOUT_S", 1.5)
    marker = f"lock_{secrets.token_hex(3)}"
    path = tmp_path / "audit.sqlite3"
    holder = None
    client_cm = sqlite_backend.client(data_dir=str(tmp_path))
    client = await client_cm.__aenter__()
    try:
        await calls(client, "warm", 1)
        await until(client, lambda s: s["written"] >= 1, 5)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        await calls(client, marker, 3)
        status = await until(client, lambda s: s["state"] == "broken", 9)
        assert status["state"] == "broken" and "locked" in (status.get("last_error") or ""), status
        assert status.get("rejected", 0) == 0, status
        holder.execute("ROLLBACK")
        status = await until(client, lambda s: s["state"] == "ok" and s["pending_retry"] == 0, 9)
        assert status["state"] == "ok", status
        assert rows_with(path, marker) == 3
        holder.execute("BEGIN EXCLUSIVE")  # held again at shutdown
        await calls(client, f"{marker}_late", 2)
    finally:
        started = time.monotonic()
        await client_cm.__aexit__(None, None, None)
        stopped_in = time.monotonic() - started
        if holder is not None:
            with contextlib.suppress(sqlite3.Error):
                holder.execute("ROLLBACK")
            holder.close()
    assert stopped_in < audit.CLOSE_TIMEOUT_S - 2, stopped_in  # not the flush limit: one busy wait


# --------------------------------------------------------- audit: a sink that stops answering


@pytest.fixture
def pg_proxy(postgres_backend: Backend) -> Iterator[Proxy]:
    target = urlsplit(postgres_backend.url)
    running = Proxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    yield running
    running.stop()


async def test_a_silent_audit_sink_is_broken_within_the_write_timeout_and_recovers(
    sqlite_backend: Backend, postgres_backend: Backend, pg_proxy: Proxy, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: audit writes had no time limit: a PostgreSQL sink that stopped answering
    (a black-holed link) held the writer for ever, the state stayed ok, health_check said
    healthy, and every later record waited behind it unseen."""
    monkeypatch.setattr(audit, "WRITE_TIMEOUT_S", 1.5, raising=False)
    await migrations.upgrade(postgres_backend.url)
    marker = f"silent_{secrets.token_hex(3)}"
    async with sqlite_backend.client(data_dir=str(tmp_path), audit_database_url=pg_proxy.url(postgres_backend.url)) as client:
        await calls(client, "warm", 1)
        await until(client, lambda s: s["written"] >= 1, 5)
        pg_proxy.mode = "blackhole"
        await calls(client, marker, 3)
        status = await until(client, lambda s: s["state"] == "broken", 5)
        assert status["state"] == "broken" and status["status"] == "degraded", status
        assert "did not answer" in (status.get("last_error") or ""), status
        pg_proxy.mode = "pass"
        pg_proxy.reset()
        status = await until(client, lambda s: s["state"] == "ok" and s["pending_retry"] == 0, 10)
        assert status["state"] == "ok", status
    found = await postgres_backend.aexecute(
        "SELECT COUNT(DISTINCT request_id) FROM sqlgate_audit WHERE sql_text LIKE :m", params={"m": f"%{marker}%"})
    assert found[0][0] == 3


# --------------------------------------------------------- audit: the data directory deleted


async def test_audit_file_deleted_while_serving_is_created_again(sqlite_backend: Backend, tmp_path: Path) -> None:
    """Regression: with the data directory removed under a running server, records went
    on being "written" to the deleted file through the open connection (state ok), and
    were gone with it."""
    data = tmp_path / "data"
    marker = f"gone_{secrets.token_hex(3)}"
    async with sqlite_backend.client(data_dir=str(data)) as client:
        await calls(client, "warm", 1)
        await until(client, lambda s: s["written"] >= 1, 5)
        shutil.rmtree(data)
        await calls(client, marker, 3)
        for _ in range(50):
            if (data / "audit.sqlite3").exists() and rows_with(data / "audit.sqlite3", marker) == 3:
                break
            await asyncio.sleep(0.1)
        status = await audit_status(client)
        assert status["state"] == "ok", status
    assert rows_with(data / "audit.sqlite3", marker) == 3


# ---------------------------------------------------------------- link faults mid-fetch


@pytest.fixture(params=("postgres", "mysql"))
def fetch_server(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.getfixturevalue(f"{request.param}_backend")
    return backend


LONG_RESULT = {
    "postgres": "SELECT g AS n, repeat('x', 2000) AS pad FROM generate_series(1, 200000) AS g",
    "mysql": "SELECT a.n AS n, repeat('x', 2000) AS pad FROM {t} a, {t} b",
}


@pytest.mark.parametrize("fault", ["blackhole", "reset"])
async def test_a_link_fault_in_the_middle_of_a_long_fetch_answers_in_time_with_the_right_code(
    fetch_server: Backend, fault: str
) -> None:
    """Regression: PostgreSQL, a link gone silent while a long result streamed through a
    cursor: asyncpg's transaction block sent a ROLLBACK without a time limit after the
    deadline fired, and the call never answered. MariaDB: the unbuffered cursor's close
    read the rest of the result on a connection aiomysql had closed, and the call answered
    DB_ERROR "'NoneType' object has no attribute 'readexactly'" (not retryable) instead of
    TIMEOUT or DB_UNAVAILABLE."""
    server = fetch_server
    table = f"fw4_{secrets.token_hex(3)}"
    if server.name == "mysql":
        await server.aexecute(f"CREATE TABLE {table} (n INT PRIMARY KEY)",
                              f"INSERT INTO {table} SELECT seq FROM seq_1_to_1000")
    target = urlsplit(server.url)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 0).start()
    proxy.mode, proxy.latency_s = "latency", 0.02  # a slow link: the fetch is surely under way
    try:
        overrides: dict[str, Any] = {"allowed_tables": [table]} if server.name == "mysql" else {}
        async with server.client(
            database_url=proxy.url(server.url), statement_timeout_ms=3000, max_rows=200000,
            max_result_bytes=100_000_000, log_level="WARNING", **overrides,
        ) as client:
            warm = await client.call_tool("execute_query", {"query": "SELECT 1 AS one"})
            assert not warm.is_error, warm.content

            async def cut() -> None:
                await asyncio.sleep(1.0)
                if fault == "blackhole":
                    proxy.mode = "blackhole"
                else:
                    proxy.reset()

            cutting = asyncio.create_task(cut())
            started = time.monotonic()
            result = await asyncio.wait_for(
                client.call_tool("execute_query", {"query": LONG_RESULT[server.name].format(t=table)}), 20)
            took = time.monotonic() - started
            await cutting
            assert result.is_error, "the fetch finished before the fault: make it longer"
            error = result.structured_content["error"]
            assert took < 3.0 + 1.5, took
            assert error["code"] == ("TIMEOUT" if fault == "blackhole" else "DB_UNAVAILABLE"), error
            assert "NoneType" not in error["message"], error
            proxy.mode = "pass"
            proxy.reset()
            after = await client.call_tool("execute_query", {"query": "SELECT 2 AS two"})
            assert not after.is_error, after.content
    finally:
        proxy.stop()
        if server.name == "mysql":
            await server.aexecute(f"DROP TABLE {table}")


# ------------------------------------------- two servers starting together on one data dir


def test_servers_started_together_on_a_fresh_data_dir_all_serve_and_audit(tmp_path: Path) -> None:
    """Regression: two ``sqlgate serve`` started at once on a new data directory both built
    the demo database and the audit file: one stopped at start-up with a stack trace
    ("table customers already exists"), or its audit log was broken for good ("table
    sqlgate_alembic_version already exists"). Migrations of a local SQLite file now take
    an advisory lock; the one that waited finds the head recorded."""
    data = tmp_path / "shared"
    marker = f"together_{secrets.token_hex(3)}"
    procs = [
        subprocess.Popen([SQLGATE, "serve", "--data-dir", str(data), "--log-level", "WARNING"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
        for _ in range(3)
    ]
    payload = handshake() + query_line(7, f"SELECT count(*) AS {marker} FROM orders")
    answers: list[Any] = [None] * len(procs)

    def talk(index: int) -> None:
        proc = procs[index]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(payload)
        proc.stdin.flush()
        for line in proc.stdout:  # until the call's answer (EOF first would cut it off)
            if json.loads(line).get("id") == 7:
                answers[index] = json.loads(line)
                break
        proc.stdin.close()

    threads = [threading.Thread(target=talk, args=(i,)) for i in range(len(procs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for proc, answer in zip(procs, answers, strict=True):
        assert proc.stderr is not None
        try:
            proc.wait(timeout=30)
        finally:
            proc.kill()
        err = proc.stderr.read()
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        assert b"Traceback" not in err, err.decode(errors="replace")[-2000:]
        assert answer is not None and answer["result"]["structuredContent"]["rows"] == [[200]], answer
    assert rows_with(data / "audit.sqlite3", marker) == len(procs)



BUILD = """
import asyncio, sys, time
from sqlgate import migrations
from sqlgate.demo import ensure_demo_database
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
asyncio.run(ensure_demo_database(sys.argv[2]))
asyncio.run(migrations.upgrade(sys.argv[3]))
"""


def test_processes_building_one_demo_database_and_audit_file_at_the_same_instant_all_succeed(tmp_path: Path) -> None:
    """The same race, made likely: four processes build the demo database and the audit
    file at the same instant (without the lock, one failed in most runs here)."""
    demo, sink = f"sqlite:///{tmp_path / 'demo.sqlite3'}", f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    at = str(time.time() + 3.0)  # after every interpreter has imported sqlgate
    builds = [subprocess.Popen([sys.executable, "-c", BUILD, at, demo, sink], stderr=subprocess.PIPE)
              for _ in range(4)]
    for build in builds:
        _, err = build.communicate(timeout=60)
        assert build.returncode == 0, err.decode(errors="replace")[-1500:]
    conn = sqlite3.connect(tmp_path / "demo.sqlite3")
    try:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 200
    finally:
        conn.close()


# ------------------------------------------------------------------ HTTP: slow clients

SLOW_COUNT = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 8000000) SELECT count(*) AS n FROM c"


def test_http_connections_that_never_finish_their_request_are_closed_and_calls_go_on(tmp_path: Path) -> None:
    """Regression (slowloris): a connection sending its request head a line at a time, or
    announcing a body it never sends, was kept for ever; ~1,000 of them took every file
    descriptor (limit 1,024) and every other client was refused for as long as they stayed.
    Now each is closed once ``request_read_timeout_s`` has passed without a complete
    request; a complete request is answered however long its call runs."""
    port = free_port()
    proc = spawn([SQLGATE, "serve", "--transport", "streamable-http", "--port", str(port), "--data-dir", str(tmp_path),
                  "--request-read-timeout-s", "1", "--log-level", "WARNING"], port, tmp_path / "http.log",
                 env={"SQLGATE_AUDIT_ENABLED": "false"})
    slow: list[socket.socket] = []
    try:
        for i in range(20):
            conn = socket.create_connection(("127.0.0.1", port))
            if i % 2:
                conn.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n")  # a head never finished
            else:
                conn.sendall(f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                             "Content-Length: 1000\r\n\r\n{".encode())  # a body never finished
            slow.append(conn)
        started = time.monotonic()
        answer = http_call(port, SLOW_COUNT)  # a call that runs longer than the read deadline
        assert answer["result"]["structuredContent"]["rows"] == [[8000000]], answer
        assert time.monotonic() - started > 1.0, "the call was quicker than the deadline: make it slower"
        deadline = time.monotonic() + 5
        for conn in slow:
            conn.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                while conn.recv(4096):
                    pass  # the server may answer before closing
            except ConnectionResetError:
                pass
            except TimeoutError:
                raise AssertionError("a connection without a complete request is still open after 5 s") from None
        assert http_call(port, "SELECT 1 AS one")["result"]["structuredContent"]["rows"] == [[1]]
    finally:
        for conn in slow:
            conn.close()
        terminate(proc)


def http_call(port: int, sql: str) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "execute_query", "arguments": {"query": sql},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}}
    response = httpx2.post(f"http://127.0.0.1:{port}/mcp", json=body, timeout=30, headers={
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call", "Mcp-Name": "execute_query"})
    assert response.status_code == 200, response.text
    return dict(response.json())


# ------------------------------------------------- the validator's workers outlive no server


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found.update(int(p) for p in (task / "children").read_text().split())
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_stopped_server_leaves_no_validator_worker_behind(tmp_path: Path, how: str) -> None:
    """Regression: a long query starts the validator's worker processes; a server stopped
    by a signal (os._exit after SIGTERM on stdio) or killed never told them, and they
    waited on their task queue for ever: ~70 MB each, two per stopped server."""
    from tests.e2e.test_redteam_wave3_transport import stdio

    proc = stdio(tmp_path)
    assert proc.stdin is not None and proc.stdout is not None
    long_query = "SELECT name, " + ", ".join(f"'{'w' * 40}' AS c{i}" for i in range(60)) + " FROM customers"
    proc.stdin.write(handshake() + query_line(7, long_query))
    proc.stdin.flush()
    for line in proc.stdout:  # the answer: the pool has checked the long text
        if json.loads(line).get("id") == 7:
            break
    workers = _children(proc.pid)
    assert len(workers) >= 1, "the long query did not start the worker pool"
    (proc.terminate if how == "SIGTERM" else proc.kill)()
    proc.wait(timeout=20)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.1)
    alive = [w for w in workers if Path(f"/proc/{w}").exists() and "Z" not in
             Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[-1].split()[:1]]
    assert not alive, f"validator workers still running after {how}: {alive}"


# ------------------------------------ the database ends a transaction whose host vanished


@pytest.mark.parametrize("name", ["postgres", "mysql"])
def test_the_database_ends_a_transaction_left_idle_past_the_backstop(
    name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sqlgate host that crashes during a network partition never closes its sockets: a
    backend idle inside a transaction kept its locks until TCP keepalive gave up (hours).
    The database now ends such a session itself, transaction_idle_timeout_s plus a margin
    after it went idle (PostgreSQL idle_in_transaction_session_timeout, MariaDB
    idle_transaction_timeout), set on every pooled connection. Here: 1 s + 1 s."""
    from sqlalchemy import text

    from sqlgate.db import engines

    monkeypatch.setattr(engines, "IDLE_BACKSTOP_MARGIN_S", 1)
    backend: Backend = request.getfixturevalue(f"{name}_backend")
    settings = backend.settings(transaction_idle_timeout_s=1)

    async def check() -> None:
        database = engines.create_database(settings.resolved_databases()[0], settings)
        try:
            async with database.engine.connect() as conn:
                # A transaction open in the database (MariaDB's pooled connections autocommit).
                await conn.execute(text("START TRANSACTION" if name == "mysql" else "SELECT 1"))
                await conn.execute(text("SELECT 1"))
                await asyncio.sleep(3.5)  # nobody ends it: the backstop (2 s) does
                with pytest.raises(Exception) as ended:  # the server closed the session
                    await conn.execute(text("SELECT 1"))
            message = str(ended.value).lower()
            assert any(word in message for word in ("closed", "idle", "gone away", "lost connection")), ended.value
            async with database.engine.connect() as conn:  # the pool gives a working connection again
                assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        finally:
            await database.engine.dispose()

    asyncio.run(check())


# --------------------------------------- a reflection on a silent link answers in time


async def test_a_reflection_on_a_link_gone_silent_answers_in_time(fetch_server: Backend) -> None:
    """Regression: reading a table's structure (describe_schema, query_optimization, the
    view check of an EXPLAIN) ran on a pooled connection outside the execution boundary:
    on a link gone silent the call never answered (TCP gives up after many minutes). Now
    it runs under the call's deadline like a statement: TIMEOUT, the connection dropped,
    and the next call is served."""
    server = fetch_server
    tables = [f"fw4r_{secrets.token_hex(3)}" for _ in range(3)]
    await server.aexecute(*(f"CREATE TABLE {t} (n INT PRIMARY KEY)" for t in tables))
    target = urlsplit(server.url)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 0).start()
    calls = [("describe_schema", {"table": tables[0]}),
             ("query_optimization", {"query": f"SELECT n FROM {tables[1]} WHERE n = 1"}),
             ("execute_query", {"query": f"EXPLAIN SELECT n FROM {tables[2]}"})]
    try:
        async with server.client(database_url=proxy.url(server.url), statement_timeout_ms=1000,
                                 allowed_tables=tables, log_level="WARNING") as client:
            for tool, arguments in calls:
                proxy.mode = "pass"
                warm = await client.call_tool("execute_query", {"query": "SELECT 1 AS one"})
                assert not warm.is_error, warm.content
                proxy.mode = "blackhole"  # the pooled connection's link goes silent
                started = time.monotonic()
                result = await asyncio.wait_for(client.call_tool(tool, arguments), 20)
                took = time.monotonic() - started
                assert result.is_error and result.structured_content["error"]["code"] == "TIMEOUT", result.content
                assert took < 1.0 + 1.5, (tool, took)
            proxy.mode = "pass"
            proxy.reset()
            after = await client.call_tool("describe_schema", {"table": tables[0]})
            assert not after.is_error, after.content
    finally:
        proxy.stop()
        await server.aexecute(*(f"DROP TABLE {t}" for t in tables))
