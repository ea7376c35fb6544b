"""The dialect registry, and that dialect-specific code lives in the dialect modules only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sqlgate.db import dialects
from sqlgate.errors import ConfigError
from sqlgate.safety import profiles
from sqlgate.settings import load_settings
from tests.conftest import Backend, unique

SRC = Path(__file__).resolve().parents[2] / "src" / "sqlgate"
DIALECT_WORDS = frozenset({"postgres", "postgresql", "mysql", "mariadb", "sqlite"})
# Where naming a dialect in a branch is the point: the db dialect modules and the pure
# safety profiles. Everything else calls their methods. (The old name-keyed dicts like
# reflect's _FACTS_SQL, row_counts' _ESTIMATE_SQL, bulk's _RUNNERS are dict-key branches too.)
HOME = ("db/dialects/", "safety/profiles/")
# Modules still branching on a dialect name, each with its owner; shrink, never grow.
NOT_YET_MOVED = {
    "advisor/": "D (issue 18): EXPLAIN capture/summaries move into the dialect modules' plan hooks",
    "audit.py": "C: SQLite sink (WAL) set-up",
}


# ------------------------------------------------------------------ registry


def test_registry_names_are_canonical_and_match_the_safety_profiles() -> None:
    assert set(dialects.DIALECTS) == {"postgresql", "mysql", "sqlite"}
    assert set(dialects.DIALECTS) == set(profiles.names())
    for name, cls in dialects.DIALECTS.items():
        assert cls.name == name
        assert profiles.get(name).sqlglot_dialect == cls.sqlglot_dialect


@pytest.mark.parametrize("name", ["oracle", "postgres", "mariadb", "", "SQLite3"])
def test_registry_refuses_an_unknown_dialect_name(name: str) -> None:
    with pytest.raises(ConfigError) as refused:
        dialects.get(name)
    assert refused.value.code == "CONFIG_ERROR"
    assert "postgresql, mysql, sqlite" in refused.value.hint


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", ("postgresql", "postgresql+asyncpg")),
        ("postgresql://u@h/db", ("postgresql", "postgresql+asyncpg")),
        ("postgresql+asyncpg://u@h/db", ("postgresql", "postgresql+asyncpg")),
        ("mysql://u@h/db", ("mysql", "mysql+aiomysql")),
        ("mariadb://u@h/db", ("mysql", "mysql+aiomysql")),
        ("mariadb+aiomysql://u@h/db", ("mysql", "mysql+aiomysql")),
        ("mysql+aiomysql://u@h/db", ("mysql", "mysql+aiomysql")),
        ("sqlite:///x.db", ("sqlite", "sqlite+aiosqlite")),
        ("sqlite+aiosqlite:///x.db", ("sqlite", "sqlite+aiosqlite")),
    ],
)
def test_registry_finds_the_dialect_by_url_scheme(url: str, expected: tuple[str, str]) -> None:
    assert (dialects.for_url(url).name, dialects.async_url(url).drivername) == expected


@pytest.mark.parametrize("url", ["oracle://u@h/db", "mssql+pyodbc://u@h/db", "postgresql+psycopg2://u@h/db"])
def test_registry_refuses_an_unknown_url_scheme(url: str) -> None:
    for call in (dialects.for_url, dialects.async_url):
        with pytest.raises(ConfigError) as refused:
            call(url)
        assert refused.value.code == "CONFIG_ERROR"
        assert "unsupported database URL scheme" in refused.value.message
        assert "postgresql://" in refused.value.hint and "sqlite:///" in refused.value.hint


def test_settings_refuse_an_unknown_url_scheme_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"database_url": "oracle://u@h/db", "data_dir": str(tmp_path)})
    assert "oracle" in refused.value.message
    with pytest.raises(ConfigError):
        load_settings({"databases": {"x": {"url": "db2://u@h/db"}}, "data_dir": str(tmp_path)})


def test_every_database_gets_its_own_dialect_object() -> None:
    # Dialect objects carry per-database caches (bulk_insert's parameter types, ...).
    assert dialects.get("postgresql") is not dialects.get("postgresql")


# ------------------------------------------------- one name in every output


async def test_health_check_and_describe_schema_name_the_dialect_alike(backend: Backend) -> None:
    table = unique("dn")
    await backend.aexecute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    canonical = {"sqlite": "sqlite", "postgres": "postgresql", "mysql": "mysql"}[backend.name]
    async with backend.client(allowed_tables=table, audit_enabled=False) as client:
        health = await client.call_tool("health_check", {"include_stats": False})
        schema = await client.call_tool("describe_schema", {})
    assert not health.is_error and not schema.is_error
    assert health.structured_content["databases"][0]["dialect"] == canonical
    assert schema.structured_content["dialect"] == canonical
    assert schema.content[0].text.startswith(f"database main ({canonical}, ")


# ------------------------------------------------- no dialect branches elsewhere


def _names_a_dialect(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.lower() in DIALECT_WORDS
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_names_a_dialect(e) for e in node.elts)
    return False


def dialect_branches(source: str) -> list[int]:
    """Lines comparing against a dialect name (``==``, ``!=``, ``in``), keying a dict by one,
    indexing by one, or matching one in a ``case``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        sides: list[ast.AST] = []
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
        elif isinstance(node, ast.Dict):
            sides = [k for k in node.keys if k is not None]
        elif isinstance(node, ast.Subscript):
            sides = [node.slice]
        elif isinstance(node, ast.MatchValue):
            sides = [node.value]
        if any(_names_a_dialect(side) for side in sides):
            found.append(getattr(node, "lineno", 0))
    return found


def test_the_branch_finder_finds_branches() -> None:
    assert dialect_branches('if x == "sqlite":\n    pass\n') == [1]
    assert dialect_branches('y = x in ("mysql", "mariadb")\n') == [1]
    assert dialect_branches('SQL = {"postgresql": "SELECT 1"}\n') == [1]
    assert dialect_branches('z = SQL["postgres"]\n') == [1]
    assert dialect_branches('t = sa.Integer().with_variant(x, "sqlite")\nname = "mysql"\n') == []


def test_no_module_outside_the_dialect_modules_branches_on_a_dialect_name() -> None:
    offenders: dict[str, list[int]] = {}
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith(HOME) or relative.startswith(tuple(NOT_YET_MOVED)):
            continue
        lines = dialect_branches(path.read_text())
        if lines:
            offenders[relative] = lines
    assert not offenders, (
        f"dialect-specific branches outside db/dialects/ and safety/profiles/: {offenders}; "
        "move them into a Dialect method or the safety profile (docs/adding-a-dialect.md)"
    )
