"""The README's Claude Desktop entry, launched exactly as Desktop would: over stdio."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parent.parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def readme_config() -> dict[str, Any]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Claude Desktop", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "README's Claude Desktop section has no ```json block"
    return json.loads(block.group(1))


def test_example_file_matches_readme() -> None:
    example = json.loads((ROOT / "examples" / "claude_desktop_config.json").read_text())
    assert example == readme_config()


async def test_readme_command_line_serves_over_stdio(tmp_path: Path) -> None:
    entry = readme_config()["mcpServers"]["sqlgate"]
    db = tmp_path / "desktop.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE desk_notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO desk_notes VALUES (1, 'hello from desktop')")
    # Desktop runs `command` from PATH; here it is the sqlgate of this test's environment.
    command = entry["command"] if Path(entry["command"]).is_absolute() else str(BIN / entry["command"])
    assert Path(command).exists(), f"{entry['command']} is not installed next to {sys.executable}"
    env = {**entry["env"], "DATABASE_URL": f"sqlite:///{db}", "SQLGATE_DATA_DIR": str(tmp_path)}
    params = StdioServerParameters(command=command, args=entry["args"], env=env)
    async with Client(params) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("execute_query", {"query": "SELECT body FROM desk_notes"})
        write = await client.call_tool("execute_query", {"query": "DELETE FROM desk_notes WHERE id = 1"})
    assert {"execute_query", "describe_schema"} <= tools
    assert result.structured_content["rows"] == [["hello from desktop"]]
    assert write.structured_content["error"]["code"] == "WRITE_NOT_ALLOWED"  # SQLGATE_MODE from the entry
