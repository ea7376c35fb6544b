"""The safety profile registry: one complete profile per dialect, found by name or URL scheme.

An unknown dialect is an error everywhere (never an empty rule set), every profile carries
every attribute a rule needs, and no safety module outside ``safety/profiles`` names a
dialect or imports from ``db``, ``tools`` or ``server``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sqlglot

from sqlgate import safety
from sqlgate.errors import ConfigError, PolicyViolation
from sqlgate.safety import functions, pipeline, profiles
from sqlgate.safety.policy import Policy
from sqlgate.safety.profiles import IdentifierCase, SafetyProfile

SAFETY_DIR = Path(safety.__file__).parent
POLICY = Policy(allowed_tables=("orders", "customers"))
ALL = list(profiles.PROFILES.values())


def test_registry_holds_the_three_canonical_names() -> None:
    assert profiles.names() == ("mysql", "postgresql", "sqlite")
    assert {p.name for p in ALL} == set(profiles.names())


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("postgresql", "postgresql"), ("postgres", "postgresql"), ("PostgreSQL", "postgresql"),
        ("mysql", "mysql"), ("mariadb", "mysql"), ("MySQL", "mysql"),
        ("sqlite", "sqlite"), ("SQLITE", "sqlite"),
    ],
)
def test_get_accepts_canonical_names_and_aliases(name: str, canonical: str) -> None:
    assert profiles.get(name) is profiles.PROFILES[canonical]


def test_get_passes_a_profile_through() -> None:
    for profile in ALL:
        assert profiles.get(profile) is profile


@pytest.mark.parametrize("name", ["oracle", "mssql", "tsql", "", "postgre", "duckdb", "sqlite3"])
def test_unknown_dialect_is_refused(name: str) -> None:
    with pytest.raises(PolicyViolation) as raised:
        profiles.get(name)
    assert raised.value.code == "PARSE_ERROR"
    assert "postgresql" in raised.value.hint


@pytest.mark.parametrize("name", ["oracle", "duckdb", "bigquery"])
def test_check_refuses_an_unknown_dialect(name: str) -> None:
    # sqlglot knows these dialects; sqlgate has no profile for them: refused, not let through.
    with pytest.raises(PolicyViolation) as raised:
        safety.check("SELECT id FROM orders", name, POLICY)
    assert raised.value.code == "PARSE_ERROR"


@pytest.mark.parametrize("name", ["oracle", "duckdb"])
def test_function_rules_refuse_an_unknown_dialect(name: str) -> None:
    # The old silent fallback: an unknown dialect got an empty function deny list.
    with pytest.raises(PolicyViolation):
        functions.is_denied("pg_sleep", name)


@pytest.mark.parametrize(
    ("alias", "canonical", "sql"),
    [
        ("postgres", "postgresql", "SELECT id FROM orders WHERE id = :id"),
        ("postgres", "postgresql", "SELECT pg_sleep(1)"),
        ("postgres", "postgresql", "SELECT E'\\x41'"),
        ("mariadb", "mysql", "SELECT id FROM orders /*! , secret */"),
        ("mysql", "mysql", "SELECT * FROM dual"),
    ],
)
def test_check_gives_the_same_outcome_for_canonical_names_and_aliases(alias: str, canonical: str, sql: str) -> None:
    def outcome(dialect: str) -> object:
        try:
            return safety.check(sql, dialect, POLICY).to_dict()
        except PolicyViolation as violation:
            return violation.to_dict()

    assert outcome(alias) == outcome(canonical)


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_profile_is_complete(profile: SafetyProfile) -> None:
    assert profile.name in profiles.names()
    assert sqlglot.Dialect.get_or_raise(profile.sqlglot_dialect) is not None
    assert profile.name in profile.url_schemes
    assert profile.denied_functions, "an empty deny list is the fallback issue 10 removes"
    assert all(f == f.lower().strip() and f for f in profile.denied_functions)
    assert isinstance(profile.identifier_case, IdentifierCase)
    assert profile.catalog_schemas or profile.catalog_table_prefixes, "every database has system catalogs"
    # Every profile parses and renders through the pipeline.
    verdict = safety.check("SELECT id FROM orders WHERE id = :id", profile, POLICY)
    assert verdict.dialect == profile.sqlglot_dialect
    assert verdict.parameters == ("id",)


@pytest.mark.parametrize(("name", "sample"), [
    ("postgresql", "pg_sleep"), ("mysql", "sleep"), ("sqlite", "load_extension"),
])
def test_profile_denies_its_dangerous_functions(name: str, sample: str) -> None:
    assert functions.is_denied(sample, name)
    with pytest.raises(PolicyViolation) as raised:
        safety.check(f"SELECT {sample}(1)", name, POLICY)
    assert raised.value.code == "FUNCTION_NOT_ALLOWED"


@pytest.mark.parametrize(("name", "schema", "table"), [
    ("postgresql", "pg_catalog", "pg_class"), ("postgresql", "information_schema", "tables"),
    ("postgresql", None, "pg_shadow"), ("postgresql", "pg_toast", "x"),
    ("mysql", "mysql", "user"), ("mysql", "information_schema", "tables"),
    ("mysql", "performance_schema", "threads"), ("mysql", "sys", "session"), ("mysql", "MySQL", "user"),
    ("sqlite", None, "sqlite_master"), ("sqlite", None, "sqlite_schema"), ("sqlite", "main", "sqlite_temp_master"),
    ("sqlite", None, "sqlite_sequence"),
])
def test_catalogs(name: str, schema: str | None, table: str) -> None:
    assert profiles.get(name).is_catalog(schema, table)


@pytest.mark.parametrize("name", ["postgresql", "mysql", "sqlite"])
def test_user_tables_are_not_catalogs(name: str) -> None:
    profile = profiles.get(name)
    assert not profile.is_catalog(None, "orders")
    assert not profile.is_catalog("public", "customers")


def test_identifier_case_rules() -> None:
    quoted = sqlglot.exp.to_identifier("Events", quoted=True)
    unquoted = sqlglot.exp.to_identifier("Events", quoted=False)
    pg = profiles.get("postgresql")
    assert pg.identifier_key(quoted) == "Events"
    assert pg.identifier_key(unquoted) == "events"
    assert pg.identifier_keys(unquoted) == {"events", "Events"}
    for name in ("mysql", "sqlite"):
        profile = profiles.get(name)
        assert profile.identifier_key(quoted) == profile.identifier_key(unquoted) == "events"
        assert profile.identifier_keys(unquoted) == {"events"}
    for profile in ALL:
        assert profile.identifier_key(None) is None
        assert profile.identifier_key("") is None


@pytest.mark.parametrize(("url", "canonical"), [
    ("postgresql://u:p@127.0.0.1:5432/db", "postgresql"),
    ("postgres://u@h/db", "postgresql"),
    ("postgresql+asyncpg://u@h/db", "postgresql"),
    ("PostgreSQL://u@h/db", "postgresql"),
    ("mysql://root@127.0.0.1/shop", "mysql"),
    ("mariadb://root@h/shop", "mysql"),
    ("mysql+aiomysql://root@h/shop", "mysql"),
    ("mariadb+aiomysql://root@h/shop", "mysql"),
    ("sqlite:///demo.sqlite3", "sqlite"),
    ("sqlite://", "sqlite"),
    ("sqlite+aiosqlite:///:memory:", "sqlite"),
])
def test_scheme_lookup(url: str, canonical: str) -> None:
    assert profiles.for_url(url) is profiles.PROFILES[canonical]
    assert profiles.scheme_of(url) in profiles.url_schemes()


@pytest.mark.parametrize("url", [
    "oracle://scott@h/orcl", "mssql+pyodbc://h/db", "duckdb:///x.db", "postgresql+psycopg2://u@h/db",
    "demo.sqlite3", "", "://h/db",
])
def test_unregistered_scheme_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        profiles.for_url(url)
    assert raised.value.code == "CONFIG_ERROR"
    assert "postgresql://" in raised.value.hint


def test_schemes_and_names_are_unique_across_profiles() -> None:
    schemes = [s for p in ALL for s in p.url_schemes]
    assert len(schemes) == len(set(schemes))
    names = [n for p in ALL for n in (p.name, *p.aliases)]
    assert len(names) == len(set(names))


def test_rules_are_a_tuple_of_named_functions() -> None:
    assert isinstance(pipeline.RULES, tuple)
    assert safety.RULES is pipeline.RULES
    assert [rule.__name__ for rule in pipeline.RULES] == [
        "hidden_effects", "write_mode", "bounded_writes", "allowed_functions", "allowed_tables",
        "allowed_columns", "named_placeholders", "bounded_cost",
    ]
    assert all(rule.__doc__ for rule in pipeline.RULES)


def _modules(*, skip_profiles: bool) -> list[Path]:
    return [
        p for p in SAFETY_DIR.rglob("*.py")
        if "__pycache__" not in p.parts and not (skip_profiles and "profiles" in p.parts)
    ]


def test_safety_imports_nothing_from_db_tools_or_server() -> None:
    for path in _modules(skip_profiles=False):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            for module in modules:
                assert not module.startswith(("sqlgate.db", "sqlgate.tools", "sqlgate.server")), (path, module)
                assert module.split(".")[0] not in {"asyncpg", "aiomysql", "aiosqlite", "sqlalchemy"}, (path, module)


def test_no_safety_module_outside_the_profiles_names_a_dialect() -> None:
    # ``if dialect == "mysql"`` belongs in a profile attribute; docstrings may name dialects.
    dialect_names = {n.lower() for n in profiles.accepted_names()}
    for path in _modules(skip_profiles=True):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert node.value.lower() not in dialect_names, (path, node.lineno, node.value)


@pytest.mark.parametrize(("name", "canonical"), [("postgres", "postgresql"), ("mariadb", "mysql"), ("sqlite", "sqlite")])
def test_verdict_output_says_the_canonical_name(name: str, canonical: str) -> None:
    verdict = safety.check("SELECT id FROM orders", name, POLICY)
    assert verdict.to_dict()["dialect"] == canonical
    assert verdict.dialect == profiles.get(name).sqlglot_dialect  # what rendering uses


def test_check_uncached_returns_the_outcome_without_the_cache() -> None:
    before = safety.check_cache_info()
    allowed = safety.check_uncached("SELECT id FROM orders", "postgresql", POLICY)
    assert isinstance(allowed, safety.Verdict)
    denied = safety.check_uncached("SELECT * FROM secrets", "mysql", POLICY)
    assert isinstance(denied, PolicyViolation) and denied.code == "TABLE_NOT_ALLOWED"
    unknown = safety.check_uncached("SELECT 1", "oracle", POLICY)
    assert isinstance(unknown, PolicyViolation) and unknown.code == "PARSE_ERROR"
    assert safety.check_cache_info() == before
