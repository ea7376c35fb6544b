"""PostgreSQL: the least-privilege role as DDL, and what the connected role can read beyond the policy.

Used by ``PostgresDialect.grant_statements`` / ``privilege_findings`` (db/privileges.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from sqlgate.db.dialects.grants import GrantPlan, GrantTable, outside_whitelist

# Predefined roles that read beyond any table grant: server files, every table, other
# sessions' activity and settings (PostgreSQL "Predefined Roles").
BROAD_ROLES = (
    "pg_read_server_files", "pg_write_server_files", "pg_execute_server_program", "pg_read_all_data",
    "pg_write_all_data", "pg_monitor", "pg_read_all_stats", "pg_read_all_settings", "pg_stat_scan_tables",
    "pg_signal_backend",
)


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _table(table: GrantTable) -> str:
    return f"{ident(table.schema)}.{ident(table.name)}" if table.schema else ident(table.name)


def grant_statements(plan: GrantPlan) -> list[str]:
    role = ident(plan.role)
    kind = "read-write" if plan.read_write else "read-only"
    out = [
        f"-- sqlgate: a {kind} role for database {plan.database} (PostgreSQL); run as a superuser or the owner.",
        f"CREATE ROLE {role} LOGIN PASSWORD {literal(plan.password)} NOSUPERUSER NOCREATEDB NOCREATEROLE "
        f"NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT {plan.connection_limit};",
    ]
    if not plan.read_write:
        out.append(f"ALTER ROLE {role} SET default_transaction_read_only = on;")
    out.append(f"ALTER ROLE {role} SET statement_timeout = {plan.statement_timeout_ms};")
    out.append(f"GRANT CONNECT ON DATABASE {ident(plan.database)} TO {role};")
    for schema in dict.fromkeys(t.schema for t in plan.tables if t.schema):
        out.append(f"GRANT USAGE ON SCHEMA {ident(schema)} TO {role};")
    for table in plan.tables:
        target = _table(table)
        if table.columns is None:
            out.append(f"GRANT SELECT ON TABLE {target} TO {role};")
            if plan.read_write:
                out.append(f"GRANT INSERT, UPDATE, DELETE ON TABLE {target} TO {role};")
            continue
        if not table.columns:
            out.append(f"-- {target}: not found, or no column left besides the denied ones: no grant")
            continue
        columns = ", ".join(ident(c) for c in table.columns)
        out.append(f"-- {target}: every column but the denied ones")
        out.append(f"GRANT SELECT ({columns}) ON TABLE {target} TO {role};")
        if plan.read_write:
            out.append(f"GRANT INSERT ({columns}), UPDATE ({columns}) ON TABLE {target} TO {role};")
            out.append(f"GRANT DELETE ON TABLE {target} TO {role};")
    for name in plan.bookkeeping:
        target = f"{ident(plan.default_schema)}.{ident(name)}" if plan.default_schema else ident(name)
        out.append(f"GRANT SELECT ON TABLE {target} TO {role};  -- sqlgate's migration check (health)")
    if plan.read_write:
        for schema in dict.fromkeys(t.schema for t in plan.tables if t.schema):
            out.append(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {ident(schema)} TO {role};  -- serial/identity ids")
    return out


async def privilege_findings(conn: Any, plan: GrantPlan) -> list[str]:
    # sqlgate's own fixed statements (catalog reads), not agent input: they bypass safety.check.
    row = (await conn.execute(text(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"))).one()
    if row[0]:
        return ["the connected role is a superuser: it can read every table and column, and server files"]
    findings = []
    if row[1]:
        findings.append("the connected role bypasses row-level security (BYPASSRLS)")
    roles = (await conn.execute(text(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(:names) AND pg_has_role(current_user, oid, 'USAGE') "
        "ORDER BY rolname"), {"names": list(BROAD_ROLES)})).scalars().all()
    if roles:
        findings.append(f"the connected role is a member of {', '.join(roles)} (reads beyond table grants)")
    allowed = {((t.schema or "").lower(), t.name.lower()) for t in plan.tables}
    readable = (await conn.execute(text(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND has_table_privilege(c.oid, 'SELECT') ORDER BY 1, 2"))).all()
    beyond = [f"{s}.{t}" for s, t in readable
              if (s.lower(), t.lower()) not in allowed and not t.lower().startswith(("sqlgate_", "alembic_version"))]
    if beyond:
        findings.append(outside_whitelist(plan, "the connected role can SELECT", beyond))
    for schema, table, column in plan.denied_columns:
        qualified = f"{ident(schema)}.{ident(table)}" if schema else ident(table)
        granted = (await conn.execute(text(
            "SELECT has_column_privilege(a.attrelid, a.attnum, 'SELECT') FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(:t) AND a.attname = :c AND NOT a.attisdropped"),
            {"t": qualified, "c": column})).scalar()
        if granted:
            findings.append(f"the connected role can SELECT the denied column {schema}.{table}.{column}")
    return findings
