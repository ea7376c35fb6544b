"""The function allowlist: data files, matching by spelling and class, policy overrides."""

from __future__ import annotations

import pytest

from sqlgate import safety
from sqlgate.errors import PolicyViolation
from sqlgate.safety import functions, profiles
from sqlgate.safety.policy import Policy

DIALECTS = ("postgresql", "mysql", "sqlite")
POLICY = Policy(allowed_tables=("customers", "orders"), default_schema="public")


def denial(sql: str, dialect: str, policy: Policy = POLICY) -> str | None:
    try:
        safety.check(sql, dialect, policy)
    except PolicyViolation as violation:
        return violation.code
    return None


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_group_has_a_reason_and_entries(dialect: str) -> None:
    data = functions.allowlist(dialect)
    assert len(data.groups) >= 6
    for group in data.groups:
        assert group.reason.strip(), group.name
        assert group.entries, group.name
    assert data.syntax


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_sample_passes_the_validator(dialect: str) -> None:
    refused = []
    for entry in functions.allowlist(dialect).entries():
        code = denial(entry.query(), dialect, Policy())
        if code is not None:
            refused.append(f"{entry.name}: {entry.query()} -> {code}")
    for what, sample in functions.allowlist(dialect).syntax:
        code = denial(f"SELECT {sample}", dialect, Policy())
        if code not in (None, "TABLE_NOT_ALLOWED"):
            refused.append(f"syntax {what}: {sample} -> {code}")
    assert not refused


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_allowlist_never_names_a_hard_denied_function(dialect: str) -> None:
    profile = profiles.get(dialect)
    exact = {n for n in profile.denied_functions if not n.endswith("*")}
    prefixes = tuple(n[:-1] for n in profile.denied_functions if n.endswith("*"))
    for entry in functions.allowlist(dialect).entries():
        assert entry.name not in exact, entry
        assert not entry.name.startswith(prefixes), entry


@pytest.mark.parametrize(("dialect", "name"), [
    ("postgresql", "setseed"), ("postgresql", "set_config"), ("postgresql", "nextval"),
    ("postgresql", "pg_advisory_lock"), ("postgresql", "pg_sleep"), ("postgresql", "current_setting"),
    ("postgresql", "pg_stat_get_backend_activity"), ("postgresql", "pg_relation_size"),
    ("postgresql", "to_regclass"), ("postgresql", "xpath"), ("postgresql", "xslt_process"), ("postgresql", "lo_import"),
    ("postgresql", "dblink"), ("postgresql", "pg_read_file"), ("postgresql", "has_table_privilege"),
    ("mysql", "sleep"), ("mysql", "get_lock"), ("mysql", "benchmark"), ("mysql", "load_file"),
    ("mysql", "extractvalue"), ("mysql", "updatexml"), ("mysql", "last_insert_id"),
    ("sqlite", "load_extension"), ("sqlite", "readfile"), ("sqlite", "sqlite_stmt"), ("sqlite", "dbstat"),
    ("sqlite", "changes"), ("sqlite", "randomblob"),
])
def test_dangerous_functions_are_not_allowed_by_default(dialect: str, name: str) -> None:
    assert functions.is_denied(name, dialect)
    assert denial(f"SELECT {name}(1)", dialect) == "FUNCTION_NOT_ALLOWED"
    assert denial(f"SELECT * FROM {name}(1) AS f", dialect) == "FUNCTION_NOT_ALLOWED"
    assert denial(f"SELECT {name.upper()}(1)", dialect) == "FUNCTION_NOT_ALLOWED"


def test_denying_a_name_denies_the_class_it_parses_into() -> None:
    # sqlglot parses LOCATE, INSTR and POSITION all into StrPosition.
    policy = Policy(allowed_tables=("customers",), denied_functions=("locate",))
    for sql in ("SELECT LOCATE('a', name) FROM customers", "SELECT INSTR(name, 'a') FROM customers",
                "SELECT POSITION('a' IN name) FROM customers"):
        assert denial(sql, "mysql", policy) == "FUNCTION_NOT_ALLOWED", sql
        assert denial(sql, "mysql") is None, sql
    assert denial("SELECT instr(name, 'a') FROM customers", "sqlite", Policy(
        allowed_tables=("customers",), denied_functions=("instr",))) == "FUNCTION_NOT_ALLOWED"


def test_allowed_functions_adds_and_denied_functions_wins() -> None:
    sql = "SELECT current_setting('TimeZone')"
    assert denial(sql, "postgresql") == "FUNCTION_NOT_ALLOWED"
    assert denial(sql, "postgresql", Policy(allowed_functions=("current_setting",))) is None
    assert denial(sql, "postgresql", Policy(
        allowed_functions=("current_setting",), denied_functions=("current_setting",))) == "FUNCTION_NOT_ALLOWED"
    assert denial("SELECT pg_sleep(0)", "postgresql", Policy(allowed_functions=("pg_sleep",))) is None


def test_the_hint_names_allowed_functions() -> None:
    with pytest.raises(PolicyViolation) as raised:
        safety.check("SELECT frobnicate(1)", "postgresql", POLICY)
    assert "allowed_functions=frobnicate" in raised.value.hint
    assert raised.value.code == "FUNCTION_NOT_ALLOWED"


@pytest.mark.parametrize("sql", [
    "SELECT pg_catalog.lower('A')", "SELECT \"pg_catalog\".lower('A')", "SELECT * FROM pg_catalog.generate_series(1, 2)",
])
def test_pg_catalog_qualified_builtins_pass(sql: str) -> None:
    assert denial(sql, "postgresql") is None


@pytest.mark.parametrize(("dialect", "sql"), [
    ("postgresql", "SELECT public.lower('A')"),
    ("postgresql", "SELECT * FROM public.generate_series(1, 2)"),
    ("postgresql", "SELECT x.y.lower('A')"),
    ("mysql", "SELECT shop.lower('A')"),
    ("sqlite", "SELECT main.lower('A')"),
])
def test_other_qualified_calls_are_user_defined_and_refused(dialect: str, sql: str) -> None:
    assert denial(sql, dialect) in ("FUNCTION_NOT_ALLOWED", "PARSE_ERROR")


@pytest.mark.parametrize("sql", [
    "SELECT 'secrets'::regclass", "SELECT CAST('secrets' AS regclass)", "SELECT regclass 'secrets'",
    "SELECT 'secrets'::pg_catalog.regclass", "SELECT 'pg_sleep'::regproc", "SELECT 'x'::regtype",
    "SELECT 'x'::regnamespace", "SELECT 'x'::regrole",
    "SELECT * FROM json_to_record('{\"a\": \"secrets\"}') AS x(a regclass)",
    "SELECT 'x'::my_enum_type",
])
def test_object_identifier_and_unknown_types_are_refused(sql: str) -> None:
    assert denial(sql, "postgresql") == "FUNCTION_NOT_ALLOWED"


def test_regconfig_is_harmless() -> None:
    assert denial("SELECT to_tsvector('english'::regconfig, 'fox')", "postgresql") is None


@pytest.mark.parametrize(("sql", "code"), [
    ("SELECT @@datadir", "STATEMENT_NOT_ALLOWED"),
    ("SELECT @@GLOBAL.secure_file_priv", "STATEMENT_NOT_ALLOWED"),
    ("SELECT @@basedir", "STATEMENT_NOT_ALLOWED"),
    ("SELECT @@version", None),
    ("SELECT @@version_comment", None),
])
def test_mysql_system_variables(sql: str, code: str | None) -> None:
    assert denial(sql, "mysql") == code


def test_optimizer_hints_are_not_calls_but_hard_denials_stay() -> None:
    policy = Policy(allowed_tables=("orders",), default_schema="shop")
    assert denial("SELECT /*+ NO_INDEX(orders) */ id FROM orders", "mysql", policy) is None
    assert denial("SELECT /*+ SET_VAR(max_statement_time = 0) */ id FROM orders", "mysql", policy) == "FUNCTION_NOT_ALLOWED"


@pytest.mark.parametrize(("dialect", "sql"), [
    # sqlglot parses these into the classes of listed built-ins, but the SQL sent keeps the
    # agent's spelling: an unlisted name could be a user-defined function of that name.
    ("postgresql", "SELECT nvl(total, 0) FROM orders"),
    ("postgresql", "SELECT instr(name, 'a') FROM customers"),
    ("postgresql", "SELECT len(name) FROM customers"),
    ("postgresql", "SELECT \"LOWER\"(name) FROM customers"),
    ("mysql", "SELECT string_agg(name, ',') FROM customers"),
    ("mysql", "SELECT strpos(name, 'a') FROM customers"),
    ("sqlite", "SELECT position('a' IN name) FROM customers"),
    ("sqlite", "SELECT char_length(name) FROM customers"),
    ("sqlite", "SELECT string_agg(name, ',') FROM customers"),
])
def test_unlisted_spellings_of_listed_classes_are_refused(dialect: str, sql: str) -> None:
    assert denial(sql, dialect, Policy(allowed_tables=("customers", "orders"))) == "FUNCTION_NOT_ALLOWED"


@pytest.mark.parametrize(("dialect", "sql"), [
    ("postgresql", "SELECT coalesce(total, 0), Coalesce(total, 1), \"lower\"(name) FROM orders, customers"),
    ("postgresql", "SELECT 'nvl(x) string_agg(' AS text_only"),
    ("mysql", "SELECT GROUP_CONCAT(name), LOCATE('a', name), INSTR(name, 'a'), POSITION('a' IN name) FROM customers"),
    ("sqlite", "SELECT group_concat(name), instr(name, 'a'), length(name) FROM customers"),
])
def test_listed_spellings_pass(dialect: str, sql: str) -> None:
    assert denial(sql, dialect, Policy(allowed_tables=("customers", "orders"))) is None


@pytest.mark.parametrize("dialect", DIALECTS)
def test_docs_list_every_allowlisted_function(dialect: str) -> None:
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs" / "functions.md").read_text()
    missing = [e.name for e in functions.allowlist(dialect).entries() if f"`{e.name}`" not in page]
    assert not missing, f"docs/functions.md does not list {missing} ({dialect})"


def test_xml_casts_are_refused_and_other_builtin_types_pass() -> None:
    for sql in ("SELECT '<a/>'::xml", "SELECT CAST('<a/>' AS xml)", "SELECT '<a/>'::xml[]"):
        assert denial(sql, "postgresql") == "FUNCTION_NOT_ALLOWED", sql
    assert denial("SELECT 'a'::tsvector, 'a'::tsquery, '1.1.1.1'::inet, '10.0.0.0/8'::cidr, "
                  "'$.a'::jsonpath, '{}'::jsonb, 'x'::bytea, '1'::money", "postgresql") is None
