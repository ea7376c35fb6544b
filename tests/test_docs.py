"""Docs that cannot drift: README and the docs site (docs/, mkdocs.yml).

- The generated pages (the configuration table, the tools reference, the CLI reference) are
  what scripts/gen_docs.py writes now: every setting with its flag and environment variable,
  every registered tool's arguments and result fields, every command.
- Every tool has its line in README and its section in docs/tools.md.
- Every page under docs/ is in the site's nav, and every link from README into docs/ exists.
- Every fenced shell block README marks ``<!-- runnable -->`` runs, and exits 0.
- .ci/run calls exactly the test command README gives; README stays one screenful-ish.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sqlgate.cli import build_parser, setting_flags
from sqlgate.settings import Settings
from sqlgate.tools import TOOL_MODULES

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"


def gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def section(text: str, title: str) -> str:
    return text.split(title + "\n", 1)[1].split("\n## ", 1)[0]


# ------------------------------------------------------------------ generated pages


@pytest.mark.parametrize("page", ["configuration.md", "reference/tools.md", "reference/cli.md"])
def test_generated_page_is_current(page: str) -> None:
    generated = {path.relative_to(DOCS).as_posix(): text for path, text in gen_docs().pages().items()}
    assert (DOCS / page).read_text() == generated[page], (
        f"docs/{page} is out of date: run `python scripts/gen_docs.py` and commit the result"
    )


def _configuration_rows() -> dict[str, str]:
    """The generated Configuration table: setting name → its whole row."""
    rows = {}
    for line in (DOCS / "configuration.md").read_text().splitlines():
        match = re.match(r"\|\s*`([a-z_]+)`\s*\|", line)
        if match:
            rows[match.group(1)] = line
    return rows


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented_with_flag_and_env(name: str) -> None:
    rows = _configuration_rows()
    assert name in rows, f"setting {name!r} has no row in docs/configuration.md"
    row = rows[name]
    assert f"`{setting_flags()[name]}" in row, f"{name}: flag missing from its row"
    assert "SQLGATE_" + name.upper() in row, f"{name}: environment variable missing from its row"


def test_no_documented_setting_is_stale() -> None:
    stale = set(_configuration_rows()) - set(Settings.model_fields)
    assert not stale, f"docs/configuration.md documents settings that do not exist: {sorted(stale)}"


def test_every_command_is_documented() -> None:
    commands = build_parser().get_default("command_names")
    cli = (DOCS / "reference" / "cli.md").read_text()
    missing = [name for name in sorted(commands) if f"## `sqlgate {name}`" not in cli]
    assert not missing, f"commands missing from docs/reference/cli.md: {missing}"


# ------------------------------------------------------------------ tools


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
def test_every_tool_is_documented(tool: str) -> None:
    lines = [line for line in section(README, "## Tools").splitlines() if line.startswith(f"| `{tool}` |")]
    assert len(lines) == 1, f"tool {tool!r} needs exactly one line in README's Tools table"
    assert f"## `{tool}`" in (DOCS / "tools.md").read_text(), f"tool {tool!r} has no section in docs/tools.md"
    assert f"## `{tool}`" in (DOCS / "reference" / "tools.md").read_text()


# ------------------------------------------------------------------ site structure and links


def _nav_pages() -> set[str]:
    text = (ROOT / "mkdocs.yml").read_text()
    nav = text.split("\nnav:\n", 1)[1]
    return set(re.findall(r":\s*([\w./-]+\.md)\s*$", nav, re.MULTILINE))


def test_every_docs_page_is_in_the_nav() -> None:
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    nav = _nav_pages()
    assert not pages - nav, f"docs pages missing from mkdocs.yml nav: {sorted(pages - nav)}"
    assert not nav - pages, f"mkdocs.yml nav names pages that do not exist: {sorted(nav - pages)}"


def test_readme_links_into_docs_exist() -> None:
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", README)
    assert links
    missing = sorted({link for link in links if not (ROOT / link).exists()})
    assert not missing, f"README links to docs pages that do not exist: {missing}"


def test_readme_is_short() -> None:
    assert len(README.splitlines()) <= 200, "README is meant to fit a screen or two: move details into docs/"


def test_claude_desktop_entry_on_the_docs_site_matches_the_example() -> None:
    example = json.loads((ROOT / "examples" / "claude_desktop_config.json").read_text())
    block = re.search(r"```json\n(.*?)```", section((DOCS / "clients.md").read_text(), "## Claude Desktop"), re.S)
    assert block and json.loads(block.group(1)) == example


# ------------------------------------------------------------------ commands README gives


def readme_test_command() -> str:
    blocks = re.findall(r"```sh\n(.*?)```", section(README, "## Install, run, test"), re.S)
    commands = [line for block in blocks for line in block.splitlines() if "pytest" in line]
    assert len(commands) == 1, commands
    return commands[0].strip()


def test_ci_runs_the_readme_test_command() -> None:
    install, _, test = readme_test_command().partition(" && ")
    assert install == 'pip install -e ".[test]"' and test.startswith("pytest"), install
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test in ci, f".ci/run must run README's test command {test!r} as it is"
    assert 'python -m pip install -q -e ".[test]"' in ci


def runnable_blocks() -> list[str]:
    return re.findall(r"<!-- runnable -->\n```sh\n(.*?)```", README, re.S)


def test_readme_marks_runnable_blocks() -> None:
    assert any("sqlgate call" in block for block in runnable_blocks())


@pytest.mark.parametrize("block", runnable_blocks())
def test_runnable_readme_block_runs(block: str, tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("SQLGATE_") and key != "DATABASE_URL"}  # as a new user has it: the demo
    env.update(PATH=bin_dir + os.pathsep + env.get("PATH", ""), SQLGATE_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(  # noqa: S603 - README's own commands
        ["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"README block failed ({done.returncode}):\n{block}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
