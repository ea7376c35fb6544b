"""TLS the way each ecosystem spells it, against real TLS servers started for the session
(tests/db/cloud_servers.py): a PostgreSQL whose pg_hba refuses plaintext TCP and a MariaDB
with require_secure_transport, both with a certificate for ``localhost`` signed by a test CA.

Required TLS never falls back to plaintext: against the main local servers (no TLS) it is
refused with a clear error. Pool, health probe and audit sink connections are encrypted
(pg_stat_ssl / Ssl_cipher, and the servers refuse anything else).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate import migrations
from sqlgate.db import dialects
from sqlgate.db.engines import create_database
from sqlgate.errors import DatabaseUnavailable
from tests.conftest import MYSQL_ADMIN, PG_ADMIN, Backend
from tests.db import cloud_servers
from tests.db.cloud_servers import MARIADB_PASSWORD, MARIADB_USER


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pg_url(host: str = "localhost", **query: str) -> str:
    port = cloud_servers.tls_postgres()
    params = "&".join(f"{k}={quote(v, safe='/')}" for k, v in query.items())
    return f"postgresql://postgres@{host}:{port}/postgres" + (f"?{params}" if params else "")


def maria_url(host: str = "localhost", **query: str) -> str:
    port = cloud_servers.tls_mariadb()
    params = "&".join(f"{k}={quote(v, safe='/')}" for k, v in query.items())
    return f"mysql://{MARIADB_USER}:{MARIADB_PASSWORD}@{host}:{port}/shop" + (f"?{params}" if params else "")


async def first_row(url: str, sql: str) -> Any:
    """Connect the way every sqlgate engine does (the URL alone) and run ``sql``."""
    engine = create_async_engine(dialects.check_url(url))
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).first()
    finally:
        await engine.dispose()


async def refused(url: str) -> str:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the driver's own error type
        await first_row(url, "SELECT 1")
    return str(caught.value)


# ------------------------------------------------------------------ PostgreSQL


async def test_pg_sslmode_require_connects_encrypted() -> None:
    row = await first_row(pg_url(sslmode="require"), "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert row[0] is True and str(row[1]).startswith("TLS")


async def test_pg_plaintext_is_refused_by_the_tls_server() -> None:
    # The fixture's server refuses plaintext TCP: whatever works against it is encrypted.
    assert "no encryption" in await refused(pg_url(sslmode="disable"))


async def test_pg_verify_full_with_the_right_ca_works_and_with_a_wrong_ca_or_host_is_refused() -> None:
    certs = cloud_servers.certificates()
    row = await first_row(pg_url(sslmode="verify-full", sslrootcert=str(certs.ca)),
                          "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert row[0] is True
    assert "certificate verify failed" in await refused(pg_url(sslmode="verify-full", sslrootcert=str(certs.other_ca)))
    # The certificate names localhost, not 127.0.0.1.
    wrong_host = await refused(pg_url("127.0.0.1", sslmode="verify-full", sslrootcert=str(certs.ca)))
    assert "certificate verify failed" in wrong_host and "127.0.0.1" in wrong_host
    # verify-ca checks the chain only: 127.0.0.1 is fine, the wrong CA is not.
    assert (await first_row(pg_url("127.0.0.1", sslmode="verify-ca", sslrootcert=str(certs.ca)), "SELECT 1"))[0] == 1
    assert "certificate verify failed" in await refused(pg_url("127.0.0.1", sslmode="verify-ca",
                                                               sslrootcert=str(certs.other_ca)))
    # libpq: sslmode=require with a root certificate verifies the chain too.
    assert "certificate verify failed" in await refused(pg_url(sslmode="require", sslrootcert=str(certs.other_ca)))


async def test_pg_require_against_a_server_without_tls_is_refused_with_a_clear_error(tmp_path: Any) -> None:
    url = PG_ADMIN + ("&" if "?" in PG_ADMIN else "?") + "sslmode=require"
    assert "rejected SSL upgrade" in await refused(url)
    # Through sqlgate: DB_UNAVAILABLE naming the cause, never a plaintext session.
    settings = Backend("postgres", url, "postgres", tmp_path).settings()
    database = create_database(settings.resolved_databases()[0], settings)
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            await database.checkout()
        assert "rejected SSL upgrade" in caught.value.message
        assert "enable TLS on the server" in caught.value.hint
    finally:
        await database.engine.dispose()


async def test_pg_pool_health_and_audit_connections_are_encrypted(tmp_path: Any) -> None:
    url = pg_url(sslmode="verify-full", sslrootcert=str(cloud_servers.certificates().ca))
    await migrations.upgrade(url)  # the migrations' own connection: TLS-only server
    backend = Backend("postgres", url, "postgres", tmp_path)
    async with backend.client(audit_database_url=url) as client:
        result = await client.call_tool("execute_query", {"query": "SELECT 41 + 1 AS answer"})
        assert not result.is_error, result.content
        health = (await client.call_tool("health_check", {})).structured_content
        tls = health["databases"][0]["tls"]
        assert tls["encrypted"] is True and tls["protocol"].startswith("TLS"), tls
        # While the client is open: the pool's and the audit sink's connections.
        rows = await first_row(url, (
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) "
            "FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
            "WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()"
        ))
        assert rows[0] >= 1 and rows[1] == 0, rows
    await asyncio.sleep(0.2)
    audited = await first_row(url, "SELECT count(*) FROM sqlgate_audit WHERE tool = 'execute_query'")
    assert audited[0] >= 1  # written over TLS (the server refuses anything else)


# --------------------------------------------------------------------- MariaDB


async def test_mariadb_ssl_mode_required_connects_encrypted() -> None:
    for url in (maria_url(**{"ssl-mode": "REQUIRED"}), maria_url(ssl_mode="required"), maria_url(ssl="true")):
        row = await first_row(url, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        assert row[1], url


async def test_mariadb_plaintext_is_refused_by_the_tls_server() -> None:
    # MariaDB answers a plaintext login under require_secure_transport with "access
    # denied"; the same credentials work over TLS (the tests below).
    message = (await refused(maria_url())).lower()
    assert "insecure transport" in message or "access denied" in message, message


async def test_mariadb_verify_identity_with_the_right_ca_works_and_with_a_wrong_ca_or_host_is_refused() -> None:
    certs = cloud_servers.certificates()
    row = await first_row(maria_url(ssl_mode="VERIFY_IDENTITY", ssl_ca=str(certs.ca)),
                          "SHOW SESSION STATUS LIKE 'Ssl_version'")
    assert str(row[1]).startswith("TLS")
    assert "certificate verify failed" in await refused(maria_url(ssl_mode="VERIFY_IDENTITY", ssl_ca=str(certs.other_ca)))
    wrong_host = await refused(maria_url("127.0.0.1", ssl_mode="VERIFY_IDENTITY", ssl_ca=str(certs.ca)))
    assert "certificate verify failed" in wrong_host or "match" in wrong_host.lower(), wrong_host
    assert (await first_row(maria_url("127.0.0.1", ssl_mode="VERIFY_CA", ssl_ca=str(certs.ca)), "SELECT 1"))[0] == 1
    # A CA bundle alone means VERIFY_CA (as the mysql client does).
    assert "certificate verify failed" in await refused(maria_url(ssl_ca=str(certs.other_ca)))


async def test_mariadb_required_tls_against_a_server_without_tls_is_refused(tmp_path: Any) -> None:
    for query in ("ssl=true", "ssl-mode=REQUIRED", "ssl_mode=VERIFY_IDENTITY"):
        url = MYSQL_ADMIN + ("&" if "?" in MYSQL_ADMIN else "?") + query
        assert "does not offer TLS" in await refused(url), query
    settings = Backend("mysql", MYSQL_ADMIN + "?ssl=true", "mysql", tmp_path).settings()
    database = create_database(settings.resolved_databases()[0], settings)
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            await database.checkout()
        assert "does not offer TLS" in caught.value.message and "nothing was sent in plaintext" in caught.value.message
    finally:
        await database.engine.dispose()


async def test_mariadb_pool_health_and_audit_connections_are_encrypted(tmp_path: Any) -> None:
    url = maria_url(ssl_mode="VERIFY_IDENTITY", ssl_ca=str(cloud_servers.certificates().ca))
    await migrations.upgrade(url)
    backend = Backend("mysql", url, "mysql", tmp_path)
    settings = backend.settings(audit_database_url=url)
    database = create_database(settings.resolved_databases()[0], settings)
    try:
        _sa, _raw, conn = await database.checkout()  # a pool connection
        try:
            async with conn.cursor() as cur:
                await cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                assert (await cur.fetchone())[1]
        finally:
            await _sa.close()
    finally:
        await database.engine.dispose()
    async with backend.client(audit_database_url=url) as client:
        result = await client.call_tool("execute_query", {"query": "SELECT 41 + 1 AS answer"})
        assert not result.is_error, result.content
        health = (await client.call_tool("health_check", {})).structured_content
        tls = health["databases"][0]["tls"]
        assert tls["encrypted"] is True and tls["protocol"].startswith("TLS"), tls
    await asyncio.sleep(0.2)
    audited = await first_row(url, "SELECT count(*) FROM sqlgate_audit WHERE tool = 'execute_query'")
    assert audited[0] >= 1  # written over TLS: the server refuses plaintext (require_secure_transport)


async def test_local_plaintext_servers_report_unencrypted(postgres_backend: Backend, mysql_backend: Backend) -> None:
    for backend in (postgres_backend, mysql_backend):
        async with backend.client() as client:
            health = (await client.call_tool("health_check", {"include_stats": False})).structured_content
        assert health["databases"][0]["tls"] == {"encrypted": False}, backend.name
