"""A fleet of sqlgate workers behind nginx (issue 17), and the deploy/ files kept valid.

The slow test runs nginx (deploy/nginx/*.template, root-less under a temp prefix) in front
of 3 Streamable HTTP workers sharing one PostgreSQL audit sink, with 20 clients for ~15 s:
10 stateless (protocol 2026-07-28, no session: spread round-robin) and 10 handshake-era
sessions running interactive transactions (sticky on Mcp-Session-Id). One worker is
SIGKILLed mid-run. nginx names the worker of every response (X-Sqlgate-Worker).
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate.db.engines import async_url
from tests.conftest import Backend
from tests.e2e.fleet_support import DEPLOY, Fleet, free_port, nginx_binary, render_nginx

COMPOSE = DEPLOY / "docker-compose.yml"
TAG = f"fleet{secrets.token_hex(3)}"
TABLE = f"{TAG}_items"


# -- the deploy/ files ----------------------------------------------------------


def test_compose_file_describes_nginx_three_workers_and_postgres() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    workers = [name for name in services if name.startswith("worker")]
    assert len(workers) == 3
    assert {"nginx", "postgres", "migrate"} <= set(services)
    sinks = {services[w]["environment"]["SQLGATE_AUDIT_DATABASE_URL"] for w in workers}
    assert len(sinks) == 1 and next(iter(sinks)).startswith("postgresql://")  # one shared sink
    for worker in workers:
        env = services[worker]["environment"]
        assert "SQLGATE_AUTH_TOKEN" in env  # token auth at every worker
        assert services[worker]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert (COMPOSE.parent / services[worker]["build"]["context"] / services[worker]["build"]["dockerfile"]).is_file()
    ids = [services[w]["environment"]["SQLGATE_WORKER_ID"] for w in workers]
    assert len(set(ids)) == 3  # each worker's sessions routed back to it
    nginx = services["nginx"]["environment"]
    assert all(f"server {w}:8000" in nginx["SQLGATE_WORKERS"] for w in workers)
    for worker, wid in zip(workers, ids, strict=True):
        assert f"upstream sqlgate_{wid} {{ server {worker}:8000;" in nginx["SQLGATE_WORKER_UPSTREAMS"]
        assert f"~^{wid}\\. sqlgate_{wid};" in nginx["SQLGATE_SESSION_ROUTES"]
    nginx = services["nginx"]
    template = nginx["volumes"][0].split(":")[0]
    assert (COMPOSE.parent / template).is_file()
    assert services["migrate"]["command"][-3:] == ["migrate", "upgrade", "--audit"]


def test_fleet_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(DEPLOY / "fleet.sh")], check=True)


def test_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    nginx = nginx_binary()
    if nginx is None:
        pytest.skip("nginx is not installed (.ci/apt-packages)")
    conf = render_nginx(tmp_path / "nginx", f"127.0.0.1:{free_port()}", [free_port() for _ in range(3)])
    text_ = conf.read_text() + (tmp_path / "nginx" / "sqlgate.conf").read_text()
    assert "${" not in text_  # every placeholder rendered
    assert "map $http_mcp_session_id $sqlgate_upstream" in text_
    assert all(f"~^w{i}\\. sqlgate_w{i};" in text_ for i in (1, 2, 3))
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path / "nginx"), "-c", str(conf)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


# -- the fleet --------------------------------------------------------------------

RUN_S = 12.0
KILL_AT_S = 5.0
CALL_TIMEOUT_S = 20.0
STATELESS_CLIENTS = 10
SESSION_CLIENTS = 10


@dataclass
class Call:
    kind: str  # read | begin | insert | commit
    tag: str | None
    started: float
    ended: float = 0.0
    worker: str | None = None
    ok: bool = False
    error: str | None = None


@dataclass
class Session:
    opened: float
    calls: list[Call] = field(default_factory=list)

    def workers(self) -> set[str]:
        return {c.worker for c in self.calls if c.ok and c.worker}


def client_for(url: str, seen: list[str], legacy: bool) -> Client:
    async def note(response: Any) -> None:
        seen.append(response.headers.get("x-sqlgate-worker", ""))

    http = httpx2.AsyncClient(timeout=CALL_TIMEOUT_S, event_hooks={"response": [note]})
    transport = streamable_http_client(url, http_client=http)
    return Client(transport, mode="legacy") if legacy else Client(transport)


async def timed(client: Client, seen: list[str], call: Call, tool: str, args: dict[str, Any]) -> Any:
    try:
        with_timeout = asyncio.wait_for(client.call_tool(tool, args), CALL_TIMEOUT_S)
        result = await with_timeout
        call.ok = not result.is_error
        if result.is_error:
            call.error = str(result.content[0].text if result.content else result)
        return result
    except Exception as exc:  # noqa: BLE001 - recorded and judged below
        call.error = f"{type(exc).__name__}: {exc}"
        return None
    finally:
        call.ended = time.monotonic()
        # $upstream_addr lists every worker tried ("a, b" when a refused): the last answered.
        call.worker = seen[-1].split(",")[-1].strip() if seen else None


@pytest.fixture(scope="module")
def fleet(postgres_backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (.ci/apt-packages)")
    postgres_backend.execute(f"CREATE TABLE {TABLE} (id text PRIMARY KEY)")
    running = Fleet(tmp_path_factory.mktemp("fleet"), postgres_backend.url, postgres_backend.url,
                    extra=("--mode", "read_write", "--max-open-transactions", "50", "--allowed-tables", TABLE))
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.mark.slow
@pytest.mark.postgres
async def test_fleet_serves_every_call_sticks_sessions_and_survives_a_worker_crash(
    fleet: Fleet, postgres_backend: Backend
) -> None:
    tag, table = TAG, TABLE
    async with httpx2.AsyncClient(timeout=CALL_TIMEOUT_S) as http:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": "2025-11-25"}
        init = await http.post(fleet.url, headers=headers, json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        session_id = init.headers["mcp-session-id"]
        worker_id, _, inner = session_id.partition(".")
        assert worker_id in ("w1", "w2", "w3") and len(inner) == 32  # routable: "<worker_id>.<the SDK's id>"
        port = fleet.worker_ports[int(worker_id[1:]) - 1]
        assert init.headers["x-sqlgate-worker"] == f"127.0.0.1:{port}"
        other = f"w{int(worker_id[1:]) % 3 + 1}.{inner}"  # another worker's prefix: that worker has no such session
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        assert (await http.post(fleet.url, headers={**headers, "mcp-session-id": other}, json=ping)).status_code == 404
    start = time.monotonic()
    stop_at = start + RUN_S
    killed: dict[str, Any] = {}
    stateless: list[list[Call]] = [[] for _ in range(STATELESS_CLIENTS)]
    sessions: list[Session] = []

    async def stateless_client(index: int) -> None:
        seen: list[str] = []
        async with client_for(fleet.url, seen, legacy=False) as client:
            n = 0
            while time.monotonic() < stop_at:
                n += 1
                call_tag = f"{tag}-s{index}-{n}"
                call = Call("read", call_tag, time.monotonic())
                stateless[index].append(call)
                await timed(client, seen, call, "execute_query",
                            {"query": f"SELECT '{call_tag}' AS tag, count(*) AS n FROM {table}"})

    async def session_client(index: int) -> None:
        n = 0
        while time.monotonic() < stop_at:
            session = Session(time.monotonic())
            sessions.append(session)
            seen: list[str] = []
            try:
                async with client_for(fleet.url, seen, legacy=True) as client:
                    while time.monotonic() < stop_at:
                        n += 1
                        begin = Call("begin", None, time.monotonic())
                        session.calls.append(begin)
                        result = await timed(client, seen, begin, "transaction_manager", {"action": "begin"})
                        if not begin.ok:
                            break
                        tid = result.structured_content["transaction_id"]
                        row_id = f"{tag}-t{index}-{n}"
                        insert = Call("insert", row_id, time.monotonic())
                        session.calls.append(insert)
                        await timed(client, seen, insert, "transaction_manager", {
                            "action": "execute", "transaction_id": tid,
                            "operations": [{"query": f"INSERT INTO {table} (id) VALUES ('{row_id}')"}]})
                        commit = Call("commit", row_id, time.monotonic())
                        session.calls.append(commit)
                        await timed(client, seen, commit, "transaction_manager",
                                    {"action": "commit", "transaction_id": tid})
                        if not (insert.ok and commit.ok):
                            break
            except Exception as exc:  # noqa: BLE001 - a session cut by the crash ends here
                session.calls.append(Call("close", None, time.monotonic(), time.monotonic(),
                                          error=f"{type(exc).__name__}: {exc}"))

    late: list[Call] = []

    async def killer() -> None:
        await asyncio.sleep(KILL_AT_S)
        killed["at"] = time.monotonic()
        killed["worker"] = await asyncio.to_thread(fleet.kill_worker, 1)
        await asyncio.sleep(0.5)
        for _ in range(3):  # new sessions after the crash: on the survivors
            seen: list[str] = []
            async with client_for(fleet.url, seen, legacy=True) as client:
                call = Call("late", None, time.monotonic())
                late.append(call)
                await timed(client, seen, call, "transaction_manager",
                            {"operations": [{"query": f"SELECT count(*) AS n FROM {table}"}]})

    await asyncio.gather(
        killer(), *(stateless_client(i) for i in range(STATELESS_CLIENTS)),
        *(session_client(i) for i in range(SESSION_CLIENTS)),
    )
    dead, kill_time = killed["worker"], killed["at"]
    reads = [c for calls in stateless for c in calls]
    tx_calls = [c for s in sessions for c in s.calls if c.kind != "close"]
    every = reads + tx_calls
    assert len(reads) > 40 and len(tx_calls) > 40, (len(reads), len(tx_calls))  # 2 shared cores
    print(f"fleet: {len(reads)} stateless calls ({sum(not c.ok for c in reads)} failed), {len(tx_calls)} "
          f"transaction calls ({sum(not c.ok for c in tx_calls)} failed) in {len(sessions)} sessions; "
          f"by worker {dict(Counter(c.worker for c in every if c.ok))}; killed {dead}")

    # Every call was answered: a result, or (only around the crash) a clear error.
    for call in every:
        assert call.ended, call
        if call.ok:
            continue
        in_flight = call.started <= kill_time + 0.5 and call.ended >= kill_time
        assert in_flight or call.worker == dead or call.kind != "read", call
        assert call.error and ("worker serving this call stopped" in call.error or "Session terminated" in call.error
                               or "SSE stream ended" in call.error or "connection" in call.error.lower()), call
    failed_reads = [c for c in reads if not c.ok]
    assert all(c.started <= kill_time + 0.5 and c.ended >= kill_time for c in failed_reads), failed_reads
    assert len(failed_reads) <= STATELESS_CLIENTS  # at most the one each client had in flight

    # Stateless calls spread; after the crash they land on the survivors only.
    served = Counter(c.worker for c in reads if c.ok)
    assert len(served) == 3, served
    assert not [c for c in reads if c.ok and c.started > kill_time + 0.5 and c.worker == dead]

    # Each session (and its interactive transactions) stayed on one worker; sessions spread;
    # a session opened after the crash is on a survivor; only sessions on the dead worker failed.
    for session in sessions:
        assert len(session.workers()) <= 1, session
        errors = [c for c in session.calls if c.error]
        if errors:
            assert session.workers() <= {dead}, session
    assert len({w for s in sessions for w in s.workers()}) >= 2
    assert len(late) == 3 and all(c.ok and c.worker != dead for c in late), late
    reopened = [s for s in sessions if s.opened > kill_time + 0.5 and s.workers()]
    assert all(dead not in s.workers() for s in reopened)

    fleet.stop()  # SIGTERM: the survivors flush their audit queues
    engine = create_async_engine(async_url(postgres_backend.url))
    try:
        async with engine.connect() as conn:
            rows = set((await conn.execute(text(f"SELECT id FROM {table}"))).scalars())
            audit = list((await conn.execute(text(
                "SELECT sql_text FROM sqlgate_audit WHERE sql_text LIKE :pattern"), {"pattern": f"%{tag}-%"})).scalars())
    finally:
        await engine.dispose()

    # Nothing written twice: each committed row once, each audited statement once.
    committed = {c.tag for c in tx_calls if c.kind == "commit" and c.ok}
    assert committed <= rows
    uncertain = {c.tag for c in tx_calls if c.kind == "commit" and not c.ok}
    assert rows <= committed | uncertain
    audited = Counter(t for sql in audit for t in _tags(sql, tag))
    assert audited and max(audited.values()) == 1
    # Audit rows = calls: every statement a survivor answered is in the shared sink; the dead
    # worker's may have died in its queue (SIGKILL), but none is there twice.
    answered_by_survivors = {c.tag for c in every if c.ok and c.worker != dead and c.kind in ("read", "insert")}
    assert answered_by_survivors <= set(audited)
    answered = {c.tag for c in every if c.kind in ("read", "insert") and (c.ok or c.started <= kill_time)}
    assert set(audited) <= answered


def _tags(sql: str, tag: str) -> list[str]:
    import re

    return re.findall(rf"{tag}-[st]\d+-\d+", sql)
