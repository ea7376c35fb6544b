"""`sqlgate grants` and health's privileges section, on the real servers.

The role is created from the printed DDL (a unique name, dropped afterwards); connecting
as that role directly (bypassing sqlgate's validator), the database itself refuses the
denied column, the tables outside the whitelist and, for a read-only policy, writes.
The privileges section reports the admin connection as reading beyond the policy and the
generated role as reading nothing beyond it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate import grants
from sqlgate.commands import run_health
from sqlgate.db.engines import async_url
from tests.conftest import Backend, unique

SERVERS = ("postgres", "mysql")


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest, postgres_backend: Backend, mysql_backend: Backend) -> Backend:
    return postgres_backend if request.param == "postgres" else mysql_backend


@pytest.fixture
def shop(server: Backend) -> Iterator[tuple[Backend, dict[str, str]]]:
    names = {"customers": unique("gcust"), "orders": unique("gord"), "secrets": unique("gsec")}
    server.execute(
        f"CREATE TABLE {names['customers']} (id INTEGER PRIMARY KEY, name VARCHAR(50), ssn VARCHAR(20))",
        f"INSERT INTO {names['customers']} (id, name, ssn) VALUES (1, 'ann', '123-45-6789')",
        f"CREATE TABLE {names['orders']} (id INTEGER PRIMARY KEY, customer_id INTEGER, total INTEGER)",
        f"INSERT INTO {names['orders']} (id, customer_id, total) VALUES (1, 1, 10)",
        f"CREATE TABLE {names['secrets']} (id INTEGER PRIMARY KEY, token VARCHAR(50))",
        f"INSERT INTO {names['secrets']} (id, token) VALUES (1, 'top-secret-token')",
    )
    yield server, names
    server.execute(*(f"DROP TABLE IF EXISTS {n}" for n in names.values()))


def statements(ddl: str) -> list[str]:
    return [line.rstrip(";").split(";  --")[0] for line in ddl.splitlines() if line and not line.startswith("--")]


async def run_as(url: str, sql: str) -> list[Any]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).fetchall())
    finally:
        await engine.dispose()


def role_url(admin_url: str, role: str, password: str) -> str:
    return make_url(admin_url).set(username=role, password=password).render_as_string(hide_password=False)


async def drop_role(server: Backend, role: str) -> None:
    if server.name == "postgres":
        await server.aexecute(f'DROP OWNED BY "{role}"', f'DROP ROLE IF EXISTS "{role}"')
    else:
        await server.aexecute(f"DROP USER IF EXISTS '{role}'@'%'")


async def test_the_printed_role_makes_the_database_refuse_what_the_policy_denies(
    shop: tuple[Backend, dict[str, str]],
) -> None:
    server, names = shop
    customers, orders, secrets_table = names["customers"], names["orders"], names["secrets"]
    role, password = unique("sqlgate_role"), "pw-" + unique("x")
    settings = server.settings(allowed_tables=f"{customers},{orders}", denied_columns=f"{customers}.ssn",
                               audit_enabled=False)
    ddl = await grants.render(settings, role=role, password=password)
    assert "ssn" not in ddl.replace(f"{customers}.ssn", "")
    assert secrets_table not in ddl
    assert "INSERT" not in ddl and "UPDATE" not in ddl
    try:
        await server.aexecute(*statements(ddl))
        url = role_url(server.url, role, password)
        assert await run_as(url, f"SELECT id, name FROM {customers}") == [(1, "ann")]
        assert await run_as(url, f"SELECT total FROM {orders}") == [(10,)]
        for refused in (f"SELECT ssn FROM {customers}", f"SELECT * FROM {customers}",
                        f"SELECT token FROM {secrets_table}",
                        f"INSERT INTO {orders} (id, customer_id, total) VALUES (2, 1, 5)"):
            with pytest.raises(Exception) as denied:  # noqa: PT011 - each server words it its own way
                await run_as(url, refused)
            message = str(denied.value).lower()
            assert "denied" in message or "read-only" in message, message
            assert "123-45-6789" not in message and "top-secret-token" not in message
        if server.name == "postgres":
            # The side channels the function allowlist closes are closed in the database too.
            with pytest.raises(Exception, match="(?i)permission|privilege|superuser"):  # noqa: PT011
                await run_as(url, "SELECT current_setting('data_directory')")
            with pytest.raises(Exception, match="(?i)permission|privilege|superuser"):  # noqa: PT011
                await run_as(url, "SELECT pg_read_file('postgresql.conf')")
            activity = await run_as(url, "SELECT pg_stat_get_backend_activity(s) FROM pg_stat_get_backend_idset() s")
            assert all(row[0] in (None, "<insufficient privilege>") or "pg_stat_get_backend" in row[0]
                       for row in activity), activity

        # health: the admin connection reads beyond the policy, the generated role does not.
        admin = await run_health(settings, include_stats=False)
        db = admin.databases[0]
        assert db.privileges is not None and db.privileges.checked and db.privileges.beyond_policy
        assert db.status == "degraded" and any("sqlgate grants" in r for r in db.reasons)
        as_role = await run_health(server.settings(database_url=url, allowed_tables=f"{customers},{orders}",
                                                   denied_columns=f"{customers}.ssn", audit_enabled=False),
                                   include_stats=False)
        db = as_role.databases[0]
        assert db.privileges is not None and db.privileges.checked, db
        assert not db.privileges.beyond_policy, db.privileges.findings
        assert db.status == "healthy", db.reasons
    finally:
        await drop_role(server, role)


async def test_a_broad_role_is_reported(shop: tuple[Backend, dict[str, str]]) -> None:
    server, names = shop
    role, password = unique("sqlgate_broad"), "pw-" + unique("x")
    database = make_url(server.url).database
    if server.name == "postgres":
        setup = [f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'",
                 f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"',
                 f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"',
                 f'GRANT pg_read_server_files TO "{role}"']
        # (the session database holds other tests' tables too: a finding names at most 5)
        expected = ("pg_read_server_files", "outside the whitelist", "denied column")
    else:
        setup = [f"CREATE USER '{role}'@'%' IDENTIFIED BY '{password}'",
                 f"GRANT SELECT ON `{database}`.* TO '{role}'@'%'",
                 f"GRANT FILE, PROCESS ON *.* TO '{role}'@'%'"]
        expected = ("FILE", "PROCESS", f"every table of {database}")
    try:
        await server.aexecute(*setup)
        url = role_url(server.url, role, password)
        report = await run_health(server.settings(
            database_url=url, allowed_tables=f"{names['customers']},{names['orders']}",
            denied_columns=f"{names['customers']}.ssn", audit_enabled=False), include_stats=False)
        db = report.databases[0]
        assert db.privileges is not None and db.privileges.beyond_policy
        text_ = " ".join(db.privileges.findings)
        for word in expected:
            assert word in text_, text_
        assert report.status == "degraded"
    finally:
        await drop_role(server, role)


async def test_read_write_policy_grants_writes_on_allowed_columns_only(shop: tuple[Backend, dict[str, str]]) -> None:
    server, names = shop
    customers = names["customers"]
    settings = server.settings(allowed_tables=f"{customers},{names['orders']}", denied_columns=f"{customers}.ssn",
                               mode="read_write", audit_enabled=False)
    ddl = await grants.render(settings, role="r_w", password="pw")
    assert "INSERT" in ddl and "DELETE" in ddl
    assert "default_transaction_read_only" not in ddl
    granted_columns = [line for line in ddl.splitlines() if customers in line and "GRANT" in line]
    assert granted_columns and all("ssn" not in line for line in granted_columns)


def test_sqlite_has_no_roles_and_the_cli_says_so(sqlite_backend: Backend, tmp_path: Any) -> None:
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "sqlgate", "grants", "--database-url", sqlite_backend.url, "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "SQLite has no roles" in done.stdout
