"""Docs that cannot drift: every setting, its flag and env var, and every tool are in README."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from sqlgate.cli import setting_flags
from sqlgate.settings import Settings
from sqlgate.tools import TOOL_MODULES

README = (Path(__file__).parent.parent / "README.md").read_text()


def _configuration_rows() -> dict[str, str]:
    """The Configuration table: setting name → its whole row."""
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`([a-z_]+)`\s*\|", line)
        if match:
            rows[match.group(1)] = line
    return rows


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented_with_flag_and_env(name: str) -> None:
    rows = _configuration_rows()
    assert name in rows, f"setting {name!r} has no row in README's Configuration table"
    row = rows[name]
    flag = setting_flags()[name]
    assert f"`{flag}" in row, f"{name}: flag {flag} missing from its README row"
    env = "SQLGATE_" + name.upper()
    assert env in row, f"{name}: environment variable {env} missing from its README row"


def test_no_documented_setting_is_stale() -> None:
    stale = set(_configuration_rows()) - set(Settings.model_fields)
    assert not stale, f"README documents settings that do not exist: {sorted(stale)}"


class _Recorder:
    def __init__(self) -> None:
        self.tools: list[str] = []

    def add_tool(self, fn: Any, name: str | None = None, **_: Any) -> None:
        self.tools.append(name or fn.__name__)

    def __getattr__(self, _name: str) -> Any:  # resources, prompts: ignored here
        def ignore(*_a: Any, **_k: Any) -> Any:
            return lambda fn: fn

        return ignore


def registered_tools() -> list[str]:
    recorder = _Recorder()
    for module_name in TOOL_MODULES:
        importlib.import_module(module_name).register(recorder, False)
    return recorder.tools


@pytest.mark.parametrize("tool", registered_tools())
def test_every_tool_is_in_the_readme_tools_table(tool: str) -> None:
    section = README.split("## Tools", 1)[1].split("\n## ", 1)[0]
    assert f"| `{tool}` |" in section, f"tool {tool!r} is missing from README's Tools table"
