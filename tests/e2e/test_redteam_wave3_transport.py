"""Red team wave 3: transport, auth, configuration and secret handling on real ``sqlgate serve``
processes (stdio, SSE, Streamable HTTP). Each probe asserts the safe outcome.

Families: configuration that could silently weaken a guarantee (odd spellings of protective
settings are applied as documented or refused at start-up); HTTP auth and exposure (token
variants, Host/Origin, probes, a session used by another token, malformed JSON-RPC); secrets
(a password in a database URL appears in no log line, tool result, probe, CLI output or
audit row); stdio (malformed lines, binary, pipelining, a client that does not read, EOF
mid-line).
"""

from __future__ import annotations

import json
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

import httpx2
import pytest

from sqlgate.errors import ConfigError
from sqlgate.settings import load_settings
from tests.e2e.serving import spawn, terminate

SQLGATE = str(Path(sys.executable).parent / "sqlgate")
TOKEN_A = "wave3-token-A-0123456789abcdef"
TOKEN_B = "wave3-token-B-0123456789abcdef"
PASSWORD = "Wave3Secret-pw-7781"  # noqa: S105 - a marker searched for in every output
SSN = "987-65-4320"
PG_URL = f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test"  # trust auth: the password is ignored
DOWN_URL = f"postgresql://postgres:{PASSWORD}@127.0.0.1:9/test"  # nothing listens on port 9
PROTOCOL = "2025-06-18"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
        return True
    except OSError:
        return False


def clean_env() -> dict[str, str]:
    """The environment without any SQLGATE_* / DATABASE_URL of the caller's."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("SQLGATE_") and k.upper() != "DATABASE_URL"}


def make_db(path: Path) -> Path:
    if not path.exists():
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, ssn TEXT)")
            conn.execute("INSERT INTO customers VALUES (1, 'ann', ?)", (SSN,))
    return path


# --------------------------------------------------------------------------- configuration


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in list(os.environ):
        if key.upper().startswith("SQLGATE_") or key.upper() == "DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{make_db(tmp_path / 'c.sqlite3')}")
    return tmp_path


# (setting, value): a value no database can read as the documented shape; start-up refuses it
# instead of dropping the protection (a denied column with no table protected nothing).
REFUSED = [
    ("SQLGATE_DENIED_COLUMNS", "ssn"),
    ("SQLGATE_DENIED_COLUMNS", "customers.*"),
    ("SQLGATE_DENIED_COLUMNS", "customers."),
    ("SQLGATE_DENIED_COLUMNS", "*.ssn"),
    ("SQLGATE_DENIED_COLUMNS", "%.ssn"),
    ("SQLGATE_DENIED_COLUMNS", "customers ssn"),
    ("SQLGATE_DENIED_COLUMNS", "customers:ssn"),
    ("SQLGATE_DENIED_COLUMNS", "a.b.c.d"),
    ("SQLGATE_DENIED_COLUMNS", "customers.ssn--x"),
    ("SQLGATE_DENIED_COLUMNS", "customers.ssn;"),
    ("SQLGATE_DENIED_COLUMNS", "'customers'.'ssn'"),
    ("SQLGATE_ALLOWED_TABLES", "*"),
    ("SQLGATE_ALLOWED_TABLES", "%"),
    ("SQLGATE_ALLOWED_TABLES", "public.*"),
    ("SQLGATE_ALLOWED_TABLES", "[]"),
    ("SQLGATE_AUDIT_ENABLED", "fals"),
    ("SQLGATE_AUDIT_ENABLED", ""),
    ("SQLGATE_AUDIT_ENABLED", "0 "),
    ("SQLGATE_AUDIT_ENABLED", "None"),
    ("SQLGATE_AUDIT_ENABLED", "null"),
    ("SQLGATE_MODE", "READ_WRITE"),
    ("SQLGATE_MODE", "read-write"),
    ("SQLGATE_MODE", " read_write"),
    ("SQLGATE_MODE", ""),
    ("SQLGATE_MAX_ROWS", "0"),
    ("SQLGATE_MAX_ROWS", "1e9"),
    ("SQLGATE_STATEMENT_TIMEOUT_MS", "0"),
    ("SQLGATE_MAX_RESULT_BYTES", "10"),
    ("SQLGATE_MAX_VALUE_BYTES", "0"),
    ("SQLGATE_ALLOW_MULTI_STATEMENT", "yes please"),
    ("SQLGATE_ALLOW_UNAUTHENTICATED", "maybe"),
]


@pytest.mark.parametrize(("variable", "value"), REFUSED, ids=[f"{k}={v!r}" for k, v in REFUSED])
def test_odd_spellings_are_refused(bare_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError):
        load_settings({})


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        # whitespace and stray commas around a name are dropped: the same names, not more
        ("SQLGATE_ALLOWED_TABLES", " customers", "allowed_tables", ("customers",)),
        ("SQLGATE_ALLOWED_TABLES", "customers,", "allowed_tables", ("customers",)),
        # an empty whitelist is an empty whitelist (nothing allowed), not "reflect everything"
        ("SQLGATE_ALLOWED_TABLES", "", "allowed_tables", ()),
        ("SQLGATE_ALLOWED_TABLES", ",", "allowed_tables", ()),
        ("SQLGATE_DENIED_COLUMNS", " customers.ssn ,", "denied_columns", ("customers.ssn",)),
        ("SQLGATE_DENIED_COLUMNS", '"customers"."ssn"', "denied_columns", ('"customers"."ssn"',)),
        ("SQLGATE_DENIED_COLUMNS", "main.customers.ssn", "denied_columns", ("main.customers.ssn",)),
        ("SQLGATE_AUDIT_ENABLED", "no", "audit_enabled", False),  # documented pydantic spellings
    ],
)
def test_odd_spellings_applied_as_documented(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: Any
) -> None:
    monkeypatch.setenv(variable, value)
    settings = load_settings({})
    found = getattr(settings, field) if field == "audit_enabled" else getattr(settings.resolved_databases()[0].policy, field)
    assert found == expected


def test_toml_typos_duplicates_and_per_database_shapes_refused(bare_env: Path) -> None:
    url = f"sqlite:///{bare_env / 'c.sqlite3'}"
    for text in [
        "audit_enable = false\n",  # a misspelled key
        "max_rows = 5\nmax_rows = 5000\n",  # a duplicated key
        'audit_enabled = "fals"\n',
        f'[databases.a]\nurl = "{url}"\ndenied_column = ["customers.ssn"]\n',
        f'[databases.a]\nurl = "{url}"\ndenied_columns = ["ssn"]\n',
        f'[databases.a]\nurl = "{url}"\nallowed_tables = ["*"]\n',
        f'[databases.a]\nurl = "{url}"\nmax_result_bytes = 10\n',  # not a per-database setting
    ]:
        path = bare_env / "c.toml"
        path.write_text(text)
        with pytest.raises(ConfigError):
            load_settings({}, path)


def test_serve_refuses_a_denied_column_without_its_table(tmp_path: Path) -> None:
    """Regression: ``--denied-columns ssn`` (no table) served with ssn readable; now exit 2."""
    db = make_db(tmp_path / "s.sqlite3")
    for flag in ("ssn", "customers.*"):
        done = subprocess.run(
            [SQLGATE, "serve", "--database-url", f"sqlite:///{db}", "--data-dir", str(tmp_path),
             "--denied-columns", flag],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30, env=clean_env(), check=False,
        )
        assert done.returncode == 2, done.stderr
        assert b"denied_columns entry" in done.stderr
        assert done.stdout == b""


# --------------------------------------------------------------------------- HTTP servers


class Http:
    def __init__(self, port: int, path: str, proc: subprocess.Popen[bytes], log: Path, data_dir: Path) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.url = self.base + path
        self.proc = proc
        self.log = log
        self.data_dir = data_dir


def headers(token: str | None, session: str | None = None, **extra: str) -> dict[str, str]:
    found = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if token:
        found["Authorization"] = f"Bearer {token}"
    if session:
        found["mcp-session-id"] = session
        found["mcp-protocol-version"] = PROTOCOL
    return {**found, **extra}


def messages(text: str) -> list[dict[str, Any]]:
    """JSON-RPC messages of a Streamable HTTP answer (SSE events or plain JSON)."""
    found = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]
    return found or ([json.loads(text)] if text.strip().startswith("{") else [])


def open_session(served: Http, token: str) -> str:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "wave3", "version": "1"}}}
    answer = httpx2.post(served.url, headers=headers(token), json=init, timeout=30)
    assert answer.status_code == 200, answer.text
    session = answer.headers["mcp-session-id"]
    httpx2.post(served.url, headers=headers(token, session),
                json={"jsonrpc": "2.0", "method": "notifications/initialized"}, timeout=30)
    return session


def call(served: Http, token: str, session: str, tool: str, arguments: dict[str, Any], rid: int = 7) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    answer = httpx2.post(served.url, headers=headers(token, session), json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    found = [m for m in messages(answer.text) if m.get("id") == rid]
    assert found, answer.text
    return found[0]


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    if not postgres_up():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    tmp = tmp_path_factory.mktemp("wave3_http")
    db = make_db(tmp / "http.sqlite3")
    port = free_port()
    log = tmp / "server.log"
    args = [
        SQLGATE, "serve", "--transport", "streamable-http", "--port", str(port), "--data-dir", str(tmp),
        "--database", f"main=sqlite:///{db}", "--database", f"pg={PG_URL}", "--database", f"down={DOWN_URL}",
        "--denied-columns", "customers.ssn", "--auth-token", f"{TOKEN_A},{TOKEN_B}",
        "--connect-timeout-s", "1", "--connect-retries", "0", "--log-format", "json", "--log-level", "DEBUG",
    ]
    proc = spawn(args, port, log, env=clean_env())
    try:
        yield Http(port, "/mcp", proc, log, tmp)
    finally:
        terminate(proc)


@pytest.fixture(scope="module")
def sse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    tmp = tmp_path_factory.mktemp("wave3_sse")
    db = make_db(tmp / "sse.sqlite3")
    port = free_port()
    log = tmp / "server.log"
    args = [
        SQLGATE, "serve", "--transport", "sse", "--port", str(port), "--data-dir", str(tmp),
        "--database-url", f"sqlite:///{db}", "--auth-token", f"{TOKEN_A},{TOKEN_B}", "--no-audit-enabled",
    ]
    proc = spawn(args, port, log, env=clean_env())
    try:
        yield Http(port, "/sse", proc, log, tmp)
    finally:
        terminate(proc)


def test_bearer_token_variants(http_server: Http) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "wave3", "version": "1"}}}
    refused = {
        "none": {},
        "two spaces": {"Authorization": f"Bearer  {TOKEN_A}"},
        "tab": {"Authorization": f"Bearer\t{TOKEN_A}"},
        "token upper-cased": {"Authorization": f"Bearer {TOKEN_A.upper()}"},
        "prefix": {"Authorization": f"Bearer {TOKEN_A[:-1]}"},
        "longer": {"Authorization": f"Bearer {TOKEN_A}x"},
        "two tokens joined": {"Authorization": f"Bearer {TOKEN_A},{TOKEN_B}"},
        "Basic": {"Authorization": f"Basic {TOKEN_A}"},
        "no scheme": {"Authorization": TOKEN_A},
        "Token scheme": {"Authorization": f"Token {TOKEN_A}"},
        "X-Api-Key": {"X-Api-Key": TOKEN_A},
        "cookie": {"Cookie": f"token={TOKEN_A}"},
    }
    for name, extra in refused.items():
        answer = httpx2.post(http_server.url, headers={**headers(None), **extra}, json=init, timeout=10)
        assert answer.status_code == 401, name
        assert TOKEN_A not in answer.text
    for query in ("access_token", "token", "auth_token"):
        answer = httpx2.post(f"{http_server.url}?{query}={TOKEN_A}", headers=headers(None), json=init, timeout=10)
        assert answer.status_code == 401, query
    for scheme in ("Bearer", "bearer", "BEARER"):  # RFC 7235: the scheme is case-insensitive
        answer = httpx2.post(http_server.url, headers={**headers(None), "Authorization": f"{scheme} {TOKEN_B}"},
                             json=init, timeout=10)
        assert answer.status_code == 200, scheme


def test_host_and_origin_checks(http_server: Http) -> None:
    for host in ("evil.example", "evil.example:80", "127.0.0.1.nip.io", "localhost.", "0.0.0.0", "127.0.0.1@evil"):
        answer = httpx2.post(http_server.url, headers=headers(TOKEN_A, Host=host), json={}, timeout=10)
        assert answer.status_code == 421, host
    for origin in ("http://evil.example", "null", "http://127.0.0.1.nip.io", "https://localhost.evil"):
        answer = httpx2.post(http_server.url, headers=headers(TOKEN_A, Origin=origin), json={}, timeout=10)
        assert answer.status_code == 403, origin


def test_cross_token_session_and_malformed_rpc(http_server: Http) -> None:
    session = open_session(http_server, TOKEN_A)
    begun = call(http_server, TOKEN_A, session, "execute_query", {"query": "SELECT name FROM customers"}, rid=2)
    assert "ann" in json.dumps(begun)
    # Token B may not use (or end) token A's session.
    other = httpx2.post(http_server.url, headers=headers(TOKEN_B, session),
                        json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, timeout=10)
    assert other.status_code == 404
    assert httpx2.delete(http_server.url, headers=headers(TOKEN_B, session), timeout=10).status_code == 404
    bodies = [
        b"{not json", b"null", b"123", b"[]", b'"x"',
        json.dumps([{"jsonrpc": "2.0", "id": 4, "method": "ping"}] * 50).encode(),
        b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"execute_query","arguments":{"query":"SELECT \xff\xfe"}}}',
        b'{"jsonrpc":"2.0","id":6,"method":"ping","params":{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"jsonrpc":"2.0","id":1' + b"0" * 5000 + b',"method":"ping"}',
        b'{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"execute_query","arguments":{"query":"SELECT \'\\ud800\'"}}}',
        json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
            "name": "execute_query", "arguments": {"query": "SELECT '" + "x" * 3_000_000 + "'"}}}).encode(),
        json.dumps({"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {
            "name": "execute_query", "arguments": {"query": "SELECT 1\x00; SELECT ssn FROM customers"}}}).encode(),
    ]
    for body in bodies:
        answer = httpx2.post(http_server.url, headers=headers(TOKEN_A, session), content=body, timeout=30)
        assert answer.status_code < 500, body[:60]
        assert SSN not in answer.text
    # Still serving, the session intact, the denied column still denied.
    denied = call(http_server, TOKEN_A, session, "execute_query", {"query": "SELECT ssn FROM customers"}, rid=11)
    assert SSN not in json.dumps(denied)
    assert "COLUMN_NOT_ALLOWED" in json.dumps(denied)
    assert http_server.proc.poll() is None


def test_sse_session_of_another_token(sse_server: Http) -> None:
    """An SSE session's message endpoint refuses another token (and no token)."""
    with httpx2.Client(timeout=10) as client, client.stream(
        "GET", sse_server.url, headers={"Authorization": f"Bearer {TOKEN_A}", "Accept": "text/event-stream"}
    ) as stream:
        endpoint = None
        for line in stream.iter_lines():
            if line.startswith("data:"):
                endpoint = line[5:].strip()
                break
        assert endpoint and "session_id=" in endpoint
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "wave3", "version": "1"}}}
        for token in (TOKEN_B, None):
            answer = httpx2.post(sse_server.base + endpoint, headers=headers(token), json=init, timeout=10)
            assert answer.status_code in (401, 403, 404), (token, answer.status_code, answer.text)
    assert sse_server.proc.poll() is None


# --------------------------------------------------------------------------- secrets


def test_password_in_urls_appears_nowhere(http_server: Http) -> None:
    # A token in the query string is refused, and must not reach the access log either.
    refused = httpx2.post(f"{http_server.url}?access_token={TOKEN_A}&password={PASSWORD}", headers=headers(None),
                          json={}, timeout=10)
    assert refused.status_code == 401
    session = open_session(http_server, TOKEN_A)
    outputs: list[str] = []
    outputs.append(json.dumps(call(http_server, TOKEN_A, session, "health_check", {}, rid=21)))
    outputs.append(json.dumps(call(http_server, TOKEN_A, session, "health_check", {"database": "down"}, rid=22)))
    outputs.append(json.dumps(call(http_server, TOKEN_A, session, "execute_query",
                                   {"query": "SELECT 1", "database": "down"}, rid=23)))
    pg = call(http_server, TOKEN_A, session, "execute_query", {"query": "SELECT 1 AS one", "database": "pg"}, rid=24)
    outputs.append(json.dumps(pg))
    outputs.append(json.dumps(call(http_server, TOKEN_A, session, "execute_query",
                                   {"query": "SELECT no_such_column FROM no_such_table", "database": "pg"}, rid=25)))
    for path in ("/healthz", "/metrics", "/readyz", "/.well-known/oauth-protected-resource/mcp"):
        probe = httpx2.get(http_server.base + path, timeout=10)
        assert SSN not in probe.text and TOKEN_A not in probe.text, path
        outputs.append(probe.text)
    env = clean_env()
    running: list[subprocess.Popen[bytes]] = []
    for args in (
        ["health", "--database-url", DOWN_URL, "--connect-timeout-s", "1", "--connect-retries", "0", "--json"],
        ["health", "--database-url", PG_URL, "--data-dir", str(http_server.data_dir)],
        ["migrate", "current", "--database-url", DOWN_URL, "--connect-timeout-s", "1"],
        ["migrate", "current", "--audit", "--audit-database-url", DOWN_URL, "--database-url", PG_URL],
        ["serve", "--database-url", PG_URL.replace("postgresql", "postgresqll")],
        ["serve", "--database-url", PG_URL + "?sslmode=bogus"],
        ["serve", "--database-url", PG_URL + "?sslmode=require"],  # the server has no TLS: a TLS error
        ["serve", "--database-url", PG_URL + "?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
         "--transport", "streamable-http", "--host", "0.0.0.0"],  # noqa: S104 - refused: no token
    ):
        # Side by side: each is a cold start of its own (~1 s), none depends on another.
        running.append(subprocess.Popen([SQLGATE, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env))
    for process in running:
        out, err = process.communicate(timeout=60)
        outputs.append(out.decode(errors="replace") + err.decode(errors="replace"))
    time.sleep(1.0)  # the audit writer flushes in the background
    outputs.append(http_server.log.read_text(errors="replace"))
    audit = http_server.data_dir / "audit.sqlite3"
    if audit.exists():
        with sqlite3.connect(audit) as conn:
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                outputs.append(json.dumps(conn.execute(f'SELECT * FROM "{name}"').fetchall(), default=str))  # noqa: S608
    for text in outputs:
        assert PASSWORD not in text, text[:2000]
        assert TOKEN_A not in text and TOKEN_B not in text, text[:2000]
        assert SSN not in text, text[:2000]
    assert "one" in outputs[3]  # the pg database answered through the password URL


# --------------------------------------------------------------------------- stdio


def stdio(tmp: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A stdio server; its log goes to a file (an unread stderr pipe would stall any process)."""
    db = make_db(tmp / "stdio.sqlite3")
    with (tmp / "stdio.log").open("ab") as log:
        return subprocess.Popen(
            [SQLGATE, "serve", "--database-url", f"sqlite:///{db}", "--data-dir", str(tmp), "--no-audit-enabled",
             "--denied-columns", "customers.ssn", *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=clean_env(),
        )


def handshake() -> bytes:
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "wave3", "version": "1"}}}
    return (json.dumps(init) + "\n" + json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n").encode()


def query_line(rid: int, sql: str) -> bytes:
    body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
            "params": {"name": "execute_query", "arguments": {"query": sql}}}
    return (json.dumps(body) + "\n").encode()


def test_stdio_garbage_pipelining_and_eof_mid_line(tmp_path: Path) -> None:
    proc = stdio(tmp_path)
    lines = [
        handshake(),
        b"{not json\n", b"\xff\xfe\x00\x01binary\n", b"\n", b"   \n", b"null\n", b"[]\n", b"123\n",
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_query","arguments":{"query":"SELECT \xff"}}}\n',
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"\n",
        b'{"jsonrpc":"2.0","id":2,"method":"ping","params":{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}}\n",
        query_line(3, "SELECT ssn FROM customers"),
        *(query_line(100 + i, f"SELECT name, {i} AS i FROM customers") for i in range(200)),
        b'{"jsonrpc":"2.0","id":999,"method":"tools/ca',  # EOF in the middle of a line
    ]
    started = time.monotonic()
    out, _ = proc.communicate(b"".join(lines), timeout=60)
    assert proc.returncode == 0, (tmp_path / "stdio.log").read_text()[-3000:]
    assert time.monotonic() - started < 30
    answers = [json.loads(line) for line in out.splitlines()]  # every line on stdout is JSON-RPC
    ids = {a.get("id") for a in answers}
    assert {3, *range(100, 300)} <= ids
    assert SSN not in out.decode(errors="replace")
    assert sum(1 for a in answers if "error" in a and a.get("id") is None) >= 4  # garbage answered, not dropped


def test_stdio_client_that_does_not_read(tmp_path: Path) -> None:
    """Backpressure: 300 calls of ~18 kB answers (5 MB) while nobody reads stdout; then read all."""
    proc = stdio(tmp_path)
    assert proc.stdin is not None and proc.stdout is not None
    big = "SELECT name, " + ", ".join(f"'{'y' * 120}' AS c{i}" for i in range(130)) + " FROM customers"
    payload = handshake() + b"".join(query_line(1000 + i, big) for i in range(300))
    writer = threading.Thread(target=lambda: (proc.stdin.write(payload), proc.stdin.flush()), daemon=True)  # type: ignore[union-attr]
    writer.start()
    time.sleep(2.0)  # the server's stdout pipe is full by now
    assert proc.poll() is None
    seen: set[int] = set()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            message = json.loads(line)
            if isinstance(message.get("id"), int) and message["id"] >= 1000:
                assert "QUERY_TOO_LARGE" not in line.decode()
                seen.add(message["id"])
            if len(seen) == 300:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=40)
    assert len(seen) == 300
    writer.join(timeout=10)
    proc.stdin.close()
    assert proc.wait(timeout=20) == 0


def test_stdio_with_stdin_dev_null_ends(tmp_path: Path) -> None:
    """Regression: stdin /dev/null (``docker run`` without -i, a systemd unit) and stdout a
    pipe: the lean transport could not poll /dev/null, never saw EOF and served forever."""
    db = make_db(tmp_path / "null.sqlite3")
    started = time.monotonic()
    done = subprocess.run(
        [SQLGATE, "serve", "--database-url", f"sqlite:///{db}", "--data-dir", str(tmp_path), "--no-audit-enabled"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30, env=clean_env(), check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == b""
    assert time.monotonic() - started < 20


def test_stdio_sigterm_while_stdout_is_full(tmp_path: Path) -> None:
    proc = stdio(tmp_path, "--shutdown-timeout-s", "2")
    assert proc.stdin is not None
    big = "SELECT " + ", ".join(f"'{'z' * 200}' AS c{i}" for i in range(90))
    payload = handshake() + b"".join(query_line(5000 + i, big) for i in range(100))
    threading.Thread(target=lambda: proc.stdin.write(payload), daemon=True).start()  # type: ignore[union-attr]
    time.sleep(2.0)  # nobody reads: the server is blocked on a full pipe
    proc.terminate()
    started = time.monotonic()
    try:
        proc.wait(timeout=25)
    finally:
        proc.kill()
    # The shutdown timeout (2 s) bounds the wait for output the client never reads, once
    # (it was waited for twice, 5 s apiece: 10 s).
    assert time.monotonic() - started < 8
    assert proc.returncode in (0, -15), proc.returncode
