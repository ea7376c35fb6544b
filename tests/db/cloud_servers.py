"""Extra database servers for the cloud-connection tests, started once per test process.

* ``tls_postgres()``: a second PostgreSQL 15 (``initdb`` into a temp dir, its own port,
  ``ssl=on``; pg_hba refuses every plaintext TCP connection, so anything that works
  against it is encrypted);
* ``tls_mariadb()``: a second MariaDB (``mariadb-install-db`` + ``mariadbd`` on a temp
  datadir, ``require_secure_transport=ON``, a user ``sqlgate`` for TCP logins);
* ``pgbouncer()``: PgBouncer in transaction mode in front of the local PostgreSQL;
* ``certificates()``: a CA, a server certificate for ``localhost`` (not 127.0.0.1: a
  hostname check against 127.0.0.1 must fail), and a second, unrelated CA.

Each starts on first use (a few seconds) and stops when the test process exits. A
missing binary skips the test with the reason (a failure under
SQLGATE_TEST_REQUIRE_SERVICES=1). initdb, postgres and pgbouncer refuse to run as root:
as root they run as the ``postgres`` user.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN, REQUIRE

PG_BIN = Path(os.environ.get("SQLGATE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
_started: dict[str, object] = {}
_root = Path(tempfile.mkdtemp(prefix="sqlgate-cloud-"))
os.chmod(_root, 0o755)  # noqa: S103 - the postgres user must reach its directories
atexit.register(shutil.rmtree, _root, True)


def _reap_after_us(stop: list[str]) -> None:
    """Run ``stop`` once this process is gone, however it ends (an xdist worker may skip
    atexit): a detached shell polls our pid."""
    import shlex

    command = " ".join(shlex.quote(part) for part in stop)
    subprocess.Popen(  # noqa: S603 - fixed commands of this module
        ["sh", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; {command}; rm -rf {shlex.quote(str(_root))}"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _missing(what: str) -> None:
    message = f"{what}; install it (see .ci/apt-packages) to run this test"
    if REQUIRE:
        pytest.fail(f"SQLGATE_TEST_REQUIRE_SERVICES is set but {message}", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    detail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"server on port {port} did not start: {detail}")


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


# ------------------------------------------------------------------ certificates


@dataclass(frozen=True)
class Certificates:
    ca: Path  # signed the server certificate
    server_cert: Path  # CN/SAN localhost only
    server_key: Path
    other_ca: Path  # an unrelated CA: verification with it must fail


def certificates() -> Certificates:
    if "certs" in _started:
        return _started["certs"]  # type: ignore[return-value]
    if shutil.which("openssl") is None:
        _missing("openssl is not installed")
    d = _root / "certs"
    d.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    for name in ("ca", "other_ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=sqlgate test {name}",
                "-keyout", f"{name}.key", "-out", f"{name}.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")
    for f in d.iterdir():
        os.chmod(f, 0o644)
        _own(f)
    os.chmod(d / "server.key", 0o600)
    _own(d)
    os.chmod(d, 0o755)
    certs = Certificates(d / "ca.pem", d / "server.pem", d / "server.key", d / "other_ca.pem")
    _started["certs"] = certs
    return certs


# ------------------------------------------------------------- TLS PostgreSQL


def tls_postgres() -> int:
    """The port of a TLS-only PostgreSQL (user postgres, trust); database ``postgres``."""
    if "pg" in _started:
        found = _started["pg"]
        if isinstance(found, BaseException):
            raise found
        return int(found)  # type: ignore[call-overload]
    if not (PG_BIN / "initdb").exists():
        _missing(f"PostgreSQL server binaries not found in {PG_BIN}")
    certs = certificates()
    data = _root / "pgdata"
    data.mkdir()
    _own(data)
    port = free_port()
    try:
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                     "--no-sync", "-E", "UTF8"]), check=True, capture_output=True, timeout=120)
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {port}\nlisten_addresses = 'localhost'\nunix_socket_directories = '{data}'\n"
                f"ssl = on\nssl_cert_file = '{certs.server_cert}'\nssl_key_file = '{certs.server_key}'\n"
                "fsync = off\nshared_buffers = 16MB\nmax_connections = 60\n"
            )
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n"
            "hostnossl all all 0.0.0.0/0 reject\nhostnossl all all ::/0 reject\n"
        )
        log = data / "server.log"
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                                     "start"]), check=True, capture_output=True, timeout=90, cwd=_root)
    except (subprocess.SubprocessError, OSError) as exc:
        detail = (data / "server.log").read_text(errors="replace")[-1500:] if (data / "server.log").exists() else ""
        _started["pg"] = RuntimeError(f"TLS PostgreSQL did not start: {exc} {detail}")
        raise _started["pg"] from exc  # type: ignore[misc]
    stop = _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
    atexit.register(lambda: subprocess.run(stop, capture_output=True, check=False, cwd=_root))
    _reap_after_us(stop)
    _started["pg"] = port
    return port


# --------------------------------------------------------------- TLS MariaDB

MARIADB_USER = "sqlgate"
MARIADB_PASSWORD = "sqlgate-test-pw"


def tls_mariadb() -> int:
    """The port of a MariaDB that refuses plaintext TCP (require_secure_transport); user
    ``sqlgate``/``sqlgate-test-pw`` with every privilege; database ``shop``."""
    if "mariadb" in _started:
        found = _started["mariadb"]
        if isinstance(found, BaseException):
            raise found
        return int(found)  # type: ignore[call-overload]
    install, server, client = (shutil.which("mariadb-install-db"), shutil.which("mariadbd") or "/usr/sbin/mariadbd",
                               shutil.which("mariadb"))
    if install is None or not Path(server).exists() or client is None:
        _missing("MariaDB server binaries (mariadb-install-db, mariadbd, mariadb) not found")
    certs = certificates()
    data = _root / "mariadb"
    data.mkdir()
    port = free_port()
    sock = data / "mysqld.sock"
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "")
    log = _root / "mariadb.log"
    try:
        subprocess.run([str(install), "--no-defaults", f"--datadir={data}", f"--user={user}",
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True, timeout=180)
        proc = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={data}", f"--port={port}", f"--socket={sock}",
             "--bind-address=127.0.0.1", f"--user={user}", f"--log-error={log}", f"--pid-file={data / 'pid'}",
             f"--ssl-ca={certs.ca}", f"--ssl-cert={certs.server_cert}", f"--ssl-key={certs.server_key}",
             "--require-secure-transport=ON", "--innodb-buffer-pool-size=16M", "--skip-log-bin",
             "--innodb-log-file-size=8M", "--performance-schema=OFF"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        atexit.register(_stop, proc)
        _reap_after_us(["kill", str(proc.pid)])
        wait_port(port, 60, proc, log)
        sql = (f"CREATE USER '{MARIADB_USER}'@'%' IDENTIFIED BY '{MARIADB_PASSWORD}'; "
               f"GRANT ALL ON *.* TO '{MARIADB_USER}'@'%'; CREATE DATABASE shop;")
        subprocess.run([client, "--no-defaults", f"--socket={sock}", "-uroot", "-e", sql],
                       check=True, capture_output=True, timeout=30)
    except (subprocess.SubprocessError, OSError, RuntimeError) as exc:
        _started["mariadb"] = RuntimeError(f"TLS MariaDB did not start: {exc}")
        raise _started["mariadb"] from exc  # type: ignore[misc]
    _started["mariadb"] = port
    return port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(Exception):
        proc.terminate()
        proc.wait(10)
    with contextlib.suppress(Exception):
        proc.kill()


# ------------------------------------------------------------------- PgBouncer


def pgbouncer() -> int:
    """The port of PgBouncer (pool_mode=transaction, 4 server connections per database)
    in front of the local PostgreSQL (SQLGATE_TEST_POSTGRES_URL's host and port)."""
    if "pgbouncer" in _started:
        found = _started["pgbouncer"]
        if isinstance(found, BaseException):
            raise found
        return int(found)  # type: ignore[call-overload]
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        _missing("pgbouncer is not installed (Debian package pgbouncer)")
    from sqlalchemy.engine import make_url

    upstream = make_url(PG_ADMIN)
    d = _root / "pgbouncer"
    d.mkdir()
    port = free_port()
    log = d / "pgbouncer.log"
    (d / "userlist.txt").write_text('"postgres" ""\n')
    (d / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={upstream.host or '127.0.0.1'} port={upstream.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {d / 'userlist.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 200\n"
        f"logfile = {log}\npidfile = {d / 'pgbouncer.pid'}\nadmin_users = postgres\n"
        "server_reset_query =\n"
    )
    for f in (d, *d.iterdir()):
        _own(f)
    proc = subprocess.Popen(_as_postgres([binary, str(d / "pgbouncer.ini")]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=d)
    atexit.register(_stop, proc)
    _reap_after_us(["pkill", "-TERM", "-f", str(d / "pgbouncer.ini")])  # runuser's child too
    try:
        wait_port(port, 30, proc, log)
    except RuntimeError as exc:
        _started["pgbouncer"] = exc
        raise
    _started["pgbouncer"] = port
    return port
