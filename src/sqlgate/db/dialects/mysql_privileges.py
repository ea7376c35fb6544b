"""MySQL/MariaDB: the least-privilege account as DDL, and what the connected account can read beyond the policy.

Used by ``MySQLDialect.grant_statements`` / ``privilege_findings`` (db/privileges.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from sqlgate.db.dialects.grants import GrantPlan, GrantTable, outside_whitelist

# Global privileges that read beyond table grants: server files, other sessions'
# statements, every table, or administration.
BROAD_GLOBAL = {
    "FILE": "FILE (reads server files with LOAD_FILE / LOAD DATA)",
    "PROCESS": "PROCESS (sees other sessions' statements)",
    "SUPER": "SUPER",
    "SELECT": "SELECT ON *.* (every table of every database)",
    "SHOW DATABASES": "SHOW DATABASES",
    "REPLICATION CLIENT": "REPLICATION CLIENT / BINLOG MONITOR",
    "BINLOG MONITOR": "BINLOG MONITOR",
    "CREATE USER": "CREATE USER",
    "GRANT OPTION": "GRANT OPTION",
}


def ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def account(plan: GrantPlan) -> str:
    return f"{literal(plan.role)}@'%'"


def _table(plan: GrantPlan, table: GrantTable) -> str:
    return f"{ident(table.schema or plan.database)}.{ident(table.name)}"


def grant_statements(plan: GrantPlan) -> list[str]:
    user = account(plan)
    kind = "read-write" if plan.read_write else "read-only"
    mariadb = "mariadb" in plan.server_version.lower()
    limits = f"MAX_USER_CONNECTIONS {plan.connection_limit}"
    if mariadb:
        limits += f" MAX_STATEMENT_TIME {plan.statement_timeout_ms / 1000:g}"
    out = [f"-- sqlgate: a {kind} account for database {plan.database} "
           f"({'MariaDB' if mariadb else 'MySQL'}); run as an administrator."]
    if not mariadb:
        out.append("-- MySQL has no per-account statement time limit: sqlgate sets max_execution_time per session.")
    out.append(f"CREATE USER {user} IDENTIFIED BY {literal(plan.password)} WITH {limits};")
    for table in plan.tables:
        target = _table(plan, table)
        if table.columns is None:
            privileges = "SELECT, INSERT, UPDATE, DELETE" if plan.read_write else "SELECT"
            out.append(f"GRANT {privileges} ON {target} TO {user};")
            continue
        if not table.columns:
            out.append(f"-- {target}: not found, or no column left besides the denied ones: no grant")
            continue
        columns = ", ".join(ident(c) for c in table.columns)
        out.append(f"-- {target}: every column but the denied ones")
        if plan.read_write:
            out.append(f"GRANT SELECT ({columns}), INSERT ({columns}), UPDATE ({columns}), DELETE ON {target} TO {user};")
        else:
            out.append(f"GRANT SELECT ({columns}) ON {target} TO {user};")
    for name in plan.bookkeeping:
        out.append(f"GRANT SELECT ON {ident(plan.database)}.{ident(name)} TO {user};  -- sqlgate's migration check (health)")
    return out


async def privilege_findings(conn: Any, plan: GrantPlan) -> list[str]:
    # sqlgate's own fixed statements (information_schema reads), not agent input.
    current = str((await conn.execute(text("SELECT CURRENT_USER()"))).scalar())
    user, _, host = current.partition("@")
    grantees = [f"'{user}'@'{host}'", "PUBLIC", "'PUBLIC'"]
    roles = (await conn.execute(text("SELECT ROLE_NAME FROM information_schema.ENABLED_ROLES"))).scalars().all()
    grantees += [f"'{r}'" for r in roles]
    params = {"g": grantees}
    findings = []
    granted = (await conn.execute(text(
        "SELECT DISTINCT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE IN :g"
    ).bindparams(_expanding("g")), params)).scalars().all()
    broad = [BROAD_GLOBAL[p] for p in granted if p in BROAD_GLOBAL]
    if broad:
        findings.append(f"the connected account {current} holds global {', '.join(broad)}")
    schemas = (await conn.execute(text(
        "SELECT DISTINCT TABLE_SCHEMA FROM information_schema.SCHEMA_PRIVILEGES "
        "WHERE GRANTEE IN :g AND PRIVILEGE_TYPE = 'SELECT'").bindparams(_expanding("g")), params)).scalars().all()
    if schemas:
        # Database names are shown to the operator; the agent learns only how many there are.
        named = ", ".join(schemas) if plan.name_outside or list(schemas) == [plan.database] else (
            f"{len(schemas)} database(s)")
        findings.append(f"the connected account can SELECT every table of {named}")
    allowed = {((t.schema or plan.database).lower(), t.name.lower()): t for t in plan.tables}
    denied_tables = {((s or plan.database).lower(), t.lower()) for s, t, _ in plan.denied_columns}
    tables = (await conn.execute(text(
        "SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLE_PRIVILEGES "
        "WHERE GRANTEE IN :g AND PRIVILEGE_TYPE = 'SELECT'").bindparams(_expanding("g")), params)).all()
    beyond = [f"{s}.{t}" for s, t in tables
              if (s.lower(), t.lower()) not in allowed and t.lower() not in plan_bookkeeping(plan)]
    if beyond:
        findings.append(outside_whitelist(plan, "the connected account can SELECT", beyond))
    whole = [f"{s}.{t}" for s, t in tables if (s.lower(), t.lower()) in denied_tables]
    if whole:
        findings.append(f"the connected account can SELECT every column of {', '.join(whole)}, denied ones included")
    columns = (await conn.execute(text(
        "SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMN_PRIVILEGES "
        "WHERE GRANTEE IN :g AND PRIVILEGE_TYPE = 'SELECT'").bindparams(_expanding("g")), params)).all()
    denied = {((s or plan.database).lower(), t.lower(), c.lower()) for s, t, c in plan.denied_columns}
    for s, t, c in columns:
        if (s.lower(), t.lower(), c.lower()) in denied:
            findings.append(f"the connected account can SELECT the denied column {s}.{t}.{c}")
    return findings


def plan_bookkeeping(plan: GrantPlan) -> set[str]:
    return {t.lower() for t in plan.bookkeeping} | {"sqlgate_alembic_version", "alembic_version"}


def _expanding(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)
