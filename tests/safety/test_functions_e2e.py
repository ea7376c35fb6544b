"""Function side channels end to end: through a real MCP client on the real databases.

Another session holds a secret in its statement text, a non-whitelisted table holds a
secret token, and the server has paths and settings; every spelling of the attacks in
issue 11 is refused, and no secret appears in any result or error text.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sqlgate.db.engines import async_url
from tests.conftest import Backend, unique

SECRET_SQL = "SELECT 'session-secret-4242' AS s"
TOKEN = "token-secret-9876"

ATTACKS: dict[str, list[str]] = {
    "postgres": [
        "SELECT pg_stat_get_backend_activity(s) FROM pg_stat_get_backend_idset() AS s",
        "SELECT pg_catalog.pg_stat_get_backend_activity(s) FROM pg_catalog.pg_stat_get_backend_idset() AS s",
        "SELECT \"pg_stat_get_backend_activity\"(s) FROM \"pg_stat_get_backend_idset\"() AS s",
        "SELECT query FROM pg_stat_get_activity(NULL)",
        "SELECT (pg_stat_get_activity(NULL)).query",
        "SELECT pg_relation_size('{secrets}')",
        "SELECT pg_total_relation_size('{secrets}'::regclass)",
        "SELECT '{secrets}'::regclass",
        "SELECT to_regclass('{secrets}')",
        "SELECT has_table_privilege('{secrets}', 'SELECT')",
        "SELECT current_setting('data_directory')",
        "SELECT CURRENT_SETTING('config_file')",
        "SELECT setseed(0.5)",
        "SELECT query_to_xml('SELECT * FROM {secrets}', true, true, '')",
    ],
    "mysql": [
        "SELECT @@datadir",
        "SELECT @@GLOBAL.secure_file_priv",
        "SELECT INFO FROM information_schema.PROCESSLIST",
        "SELECT ExtractValue('<a>b</a>', '/a')",
        "SELECT LOAD_FILE('/etc/hostname')",
        "SELECT GET_LOCK('x', 0)",
    ],
    "sqlite": [
        "SELECT sql FROM sqlite_stmt",
        "SELECT * FROM sqlite_stmt()",
        "SELECT name, pgsize FROM dbstat",
        "SELECT * FROM dbstat('main')",
        "SELECT * FROM pragma_table_info('{secrets}')",
    ],
}


@pytest.fixture
async def scene(backend: Backend) -> AsyncIterator[tuple[Backend, str, str]]:
    orders, secrets_table = unique("fo"), unique("fsecret")
    await backend.aexecute(
        f"CREATE TABLE {orders} (id INTEGER PRIMARY KEY, total INTEGER)",
        f"INSERT INTO {orders} (id, total) VALUES (1, 10)",
        f"CREATE TABLE {secrets_table} (id INTEGER PRIMARY KEY, token VARCHAR(40))",
        f"INSERT INTO {secrets_table} (id, token) VALUES (1, '{TOKEN}')",
    )
    # Another session whose last statement holds a secret (what pg_stat_get_backend_activity shows).
    engine = create_async_engine(async_url(backend.url))
    try:
        async with engine.connect() as other:
            await other.execute(text(SECRET_SQL))
            yield backend, orders, secrets_table
    finally:
        await engine.dispose()
        await backend.aexecute(f"DROP TABLE {orders}", f"DROP TABLE {secrets_table}")


def _texts(result: Any) -> str:
    parts = [getattr(c, "text", "") for c in result.content]
    parts.append(json.dumps(result.structured_content, default=str))
    return "\n".join(parts)


async def test_side_channel_functions_are_refused_and_leak_nothing(scene: tuple[Backend, str, str]) -> None:
    backend, orders, secrets_table = scene
    async with backend.client(allowed_tables=orders, audit_enabled=False) as client:
        for attack in ATTACKS[backend.name]:
            sql = attack.replace("{secrets}", secrets_table)
            result = await client.call_tool("execute_query", {"query": sql})
            shown = _texts(result)
            assert result.is_error, f"{sql} was allowed: {shown}"
            code = result.structured_content["error"]["code"]
            assert code in ("FUNCTION_NOT_ALLOWED", "TABLE_NOT_ALLOWED", "STATEMENT_NOT_ALLOWED"), (sql, shown)
            for secret in ("session-secret-4242", TOKEN, "/var/lib", "postgresql.conf"):
                assert secret not in shown, (sql, shown)
        # Ordinary analytics on the same server still runs.
        ok = await client.call_tool("execute_query", {"query": f"SELECT COUNT(*) AS n, MAX(total) AS m FROM {orders}"})
        assert not ok.is_error, _texts(ok)


async def test_setseed_state_cannot_be_planted_on_a_pooled_connection(postgres_backend: Backend) -> None:
    async with postgres_backend.client(allowed_tables="", audit_enabled=False) as client:
        planted = await client.call_tool("execute_query", {"query": "SELECT setseed(0.5)"})
        assert planted.is_error and planted.structured_content["error"]["code"] == "FUNCTION_NOT_ALLOWED"
        hidden = await client.call_tool("execute_query", {"query": "SELECT 1 FROM (SELECT setseed(0.5)) AS s"})
        assert hidden.is_error and hidden.structured_content["error"]["code"] == "FUNCTION_NOT_ALLOWED"
