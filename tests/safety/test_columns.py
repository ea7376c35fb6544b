"""Column resolution (safety.columns): denied columns against the reflected schema.

Unit cases for each family, then hypothesis properties: column-alias lists,
parenthesised joins and whole-row references over a table with denied columns and over
one without, where the verdict must follow the resolved column, not the spelling.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlgate import safety
from sqlgate.errors import PolicyViolation
from sqlgate.safety import profiles
from sqlgate.safety.policy import Policy
from sqlgate.safety.redact import MASK, redact_text

CUSTOMERS = ("id", "name", "email", "ssn", "created_at")
ORDERS = ("id", "customer_id", "total")
DEFAULT_SCHEMA = {"postgres": "public", "mysql": "shop", "sqlite": "main"}


def policy(dialect: str, *, denied: bool = True, schema: bool = True, mode: str = "read_only") -> Policy:
    return Policy(
        mode=mode,
        allowed_tables=("customers", "orders"),
        denied_columns=("customers.ssn",) if denied else (),
        table_columns={"customers": CUSTOMERS} if schema else {},
        default_schema=DEFAULT_SCHEMA[dialect],
    )


def verdict(sql: str, dialect: str = "postgres", **kwargs: object) -> str:
    """"allow" or the denial code."""
    outcome = safety.check_uncached(sql, dialect, policy(dialect, **kwargs))  # type: ignore[arg-type]
    return outcome.code if isinstance(outcome, PolicyViolation) else "allow"


DENIED = {
    "postgres": [
        "SELECT t.s FROM customers AS t(a, b, e, s)",
        "SELECT c.s FROM customers c(a, b, e, s)",
        "SELECT t.x FROM customers AS t(a, b, e, s, c, x)",  # more names than columns
        "SELECT c.to_jsonb FROM customers c",
        "SELECT c.text FROM customers c",
        "SELECT to_jsonb(c) FROM customers c",
        "SELECT row_to_json(c.*) FROM customers c",
        "SELECT c::text FROM customers c",
        "SELECT (c).* FROM customers c",
        "SELECT (c).ssn FROM customers c",
        "SELECT ROW(c.*) FROM customers c",
        "SELECT customers FROM customers",
        "TABLE customers",
        "SELECT json_agg(c) FROM customers c",
        "SELECT array_agg(c) FROM customers c",
        "SELECT name FROM customers c ORDER BY c",
        "SELECT DISTINCT ON (ssn) id FROM customers",
        "SELECT id FROM customers WINDOW w AS (PARTITION BY ssn)",
        "SELECT count(*) FILTER (WHERE ssn > '5') FROM customers",
        "SELECT * FROM (customers)",
        "SELECT * FROM (customers c JOIN orders o ON o.customer_id = c.id)",
        "SELECT j.ssn FROM (customers c JOIN orders o ON o.customer_id = c.id) AS j",
        "SELECT x.* FROM orders o, LATERAL (SELECT c.ssn FROM customers c WHERE c.id = o.customer_id) x",
        "SELECT * FROM customers c JOIN LATERAL (SELECT c.*) x ON true",
        "SELECT 1 FROM customers c, jsonb_each(to_jsonb(c)) AS kv",
        "SELECT id FROM customers UNION SELECT id FROM orders ORDER BY ssn",
        "SELECT c.id FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE ssn = '1')",
        "SELECT c.id FROM customers c WHERE c.id IN (SELECT * FROM customers)",
        "SELECT public.customers.ssn FROM public.customers",
        'SELECT "SSN" FROM customers',
        "SELECT c.ctid FROM customers c",
        "SELECT nope.name FROM customers c",
        # "SSN" is not ssn in PostgreSQL: the inner name must not hide the outer column
        'SELECT (SELECT ssn FROM (SELECT 1 AS "SSN") x) FROM customers',
    ],
    "mysql": [
        "SELECT * FROM (customers)",
        "SELECT GROUP_CONCAT(ssn) FROM customers",
        "SELECT _rowid FROM customers",
        "SELECT customers.* FROM shop.customers",
        "SELECT ssn FROM SHOP.customers",
        "SELECT id FROM customers FORCE INDEX (uq_ssn)",  # rows in the denied column's order
        # with lower_case_table_names=0 the alias C is not c: the protected one wins
        "SELECT c.ssn FROM orders C JOIN customers c ON c.id = C.customer_id",
        "SELECT (SELECT c.ssn FROM orders C LIMIT 1) FROM customers c",
    ],
    "sqlite": [
        "SELECT * FROM (customers)",
        "SELECT rowid FROM customers",
        "SELECT c.oid FROM customers c",
        "SELECT [ssn] FROM customers",
        "SELECT * FROM (customers c JOIN orders o ON o.customer_id = c.id)",
    ],
}

DENIED_WRITES = {
    "postgres": [
        "INSERT INTO customers (id, ssn) VALUES (1, '2')",
        "INSERT INTO customers VALUES (1, 'a', 'b', '2', now())",
        "INSERT INTO customers (id, name) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET name = 'b' "
        "WHERE customers.ssn = '1' RETURNING id",
        "INSERT INTO customers AS x (id, name) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET name = x.ssn",
        "INSERT INTO customers (id, name) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET name = excluded.ssn",
        "INSERT INTO customers (id, name) VALUES (1, 'a') ON CONFLICT (ssn) DO NOTHING",
        "INSERT INTO customers (id, name) SELECT id, ssn FROM customers",
        "UPDATE customers SET ssn = 'x' WHERE id = 1",
        "UPDATE customers SET name = 'x' WHERE ssn = '1'",
        "UPDATE customers SET name = 'x' WHERE id = 1 RETURNING *",
        "DELETE FROM customers WHERE id = 1 RETURNING customers",
        "DELETE FROM orders o USING customers c WHERE c.ssn = 'x' AND o.customer_id = c.id",
        "MERGE INTO customers c USING orders o ON c.id = o.customer_id WHEN NOT MATCHED THEN "
        "INSERT (id, ssn) VALUES (1, '2')",
    ],
    "mysql": [
        "INSERT INTO customers SET id = 1, ssn = '1'",
        "INSERT INTO customers (id) VALUES (1) ON DUPLICATE KEY UPDATE name = VALUES(ssn)",
        "INSERT INTO customers (id) VALUES (1) AS new ON DUPLICATE KEY UPDATE name = new.ssn",
        "UPDATE customers c JOIN orders o ON o.customer_id = c.id SET c.name = c.ssn WHERE o.id = 1",
    ],
    "sqlite": [
        "INSERT INTO customers (id, ssn) VALUES (1, '2')",
        "UPDATE customers SET name = 'x' WHERE id = 1 RETURNING *",
    ],
}

ALLOWED = {
    "postgres": [
        "SELECT count(*) FROM customers",
        "SELECT o.id FROM orders o WHERE EXISTS (SELECT * FROM customers c WHERE c.id = o.customer_id)",
        "SELECT o.id FROM orders o WHERE NOT EXISTS (SELECT c.* FROM customers c WHERE c.id = o.customer_id)",
        "SELECT t.b FROM customers AS t(a, b, e, s)",
        "SELECT t.email FROM customers AS t(a, b)",
        "SELECT j.name FROM (customers c JOIN orders o ON o.customer_id = c.id) AS j",
        "SELECT c.name, o.total FROM (customers c JOIN orders o ON o.customer_id = c.id)",
        "SELECT name AS n FROM customers ORDER BY n",
        "SELECT x.n FROM customers c, LATERAL (SELECT c.name AS n) x",
        "WITH x AS (SELECT name AS ssn FROM customers) SELECT ssn FROM x",
        "WITH customers AS (SELECT 1 AS ssn) SELECT ssn FROM customers",
        "SELECT * FROM (SELECT id, name FROM customers) AS c",
        "SELECT t FROM (SELECT id, name FROM customers) t",
        "SELECT to_jsonb(o) FROM orders o",
        "SELECT o.* FROM orders o JOIN customers c ON c.id = o.customer_id",
        "SELECT c.id, o.total FROM customers c JOIN orders o USING (id)",
        "SELECT name, row_number() OVER (PARTITION BY email ORDER BY created_at) FROM customers",
        "SELECT id FROM customers WHERE id = 1 UNION ALL SELECT id FROM customers ORDER BY 1",
        "SELECT c.name FROM customers c GROUP BY 1 HAVING count(*) > 1",
        "SELECT current_user, user FROM customers",
    ],
    "mysql": [
        "SELECT count(*) FROM customers",
        "SELECT JSON_OBJECT('a', name) FROM customers",
        "SELECT o.id FROM orders o WHERE EXISTS (SELECT * FROM customers c WHERE c.id = o.customer_id)",
        "SELECT c.name FROM shop.customers c",
    ],
    "sqlite": [
        "SELECT count(*) FROM customers",
        "SELECT name, email FROM customers ORDER BY created_at",
        "SELECT o.id FROM orders o WHERE EXISTS (SELECT * FROM customers c WHERE c.id = o.customer_id)",
    ],
}

ALLOWED_WRITES = {
    "postgres": [
        "INSERT INTO customers (id, name) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET name = excluded.name "
        "RETURNING id, name",
        "UPDATE customers SET name = 'x' WHERE id = 1 RETURNING id, name",
        "INSERT INTO customers DEFAULT VALUES",
    ],
    "mysql": ["INSERT INTO customers (id, name) VALUES (1, 'a') ON DUPLICATE KEY UPDATE name = VALUES(name)"],
    "sqlite": ["INSERT INTO customers (id, name) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET name = excluded.name"],
}


def _cases(table: dict[str, list[str]]) -> list[object]:
    return [pytest.param(d, sql, id=f"{d}:{sql[:60]}") for d, queries in table.items() for sql in queries]


@pytest.mark.parametrize(("dialect", "sql"), _cases(DENIED))
def test_denied_reads(dialect: str, sql: str) -> None:
    assert verdict(sql, dialect) == "COLUMN_NOT_ALLOWED"


@pytest.mark.parametrize(("dialect", "sql"), _cases(DENIED_WRITES))
def test_denied_writes(dialect: str, sql: str) -> None:
    assert verdict(sql, dialect, mode="read_write") == "COLUMN_NOT_ALLOWED"


@pytest.mark.parametrize(("dialect", "sql"), _cases(ALLOWED))
def test_allowed_reads(dialect: str, sql: str) -> None:
    assert verdict(sql, dialect) == "allow"


@pytest.mark.parametrize(("dialect", "sql"), _cases(ALLOWED_WRITES))
def test_allowed_writes(dialect: str, sql: str) -> None:
    assert verdict(sql, dialect, mode="read_write") == "allow"


def test_hint_names_the_allowed_columns() -> None:
    with pytest.raises(PolicyViolation) as denied:
        safety.check("SELECT ssn FROM customers", "postgres", policy("postgres"))
    assert denied.value.code == "COLUMN_NOT_ALLOWED"
    assert "id, name, email, created_at" in denied.value.hint


def test_without_the_schema_the_rules_fall_back_to_names() -> None:
    # sqlgate check with no database: denied names, stars, whole rows and function-named
    # attributes are still refused; an alias list cannot be resolved, so it is refused.
    for sql in ("SELECT ssn FROM customers", "SELECT * FROM (customers)", "SELECT c.to_jsonb FROM customers c",
                "SELECT to_jsonb(c) FROM customers c", "SELECT t.b FROM customers AS t(a, b, e, s)"):
        assert verdict(sql, schema=False) == "COLUMN_NOT_ALLOWED", sql
    assert verdict("SELECT c.name FROM customers c", schema=False) == "allow"


def test_mysql_exact_table_names_profile() -> None:
    exact = Policy(allowed_tables=("customers",), default_schema="shop", exact_table_names=True)
    loose = exact.model_copy(update={"exact_table_names": False})
    for sql in ("SELECT id FROM CUSTOMERS", "SELECT id FROM `Customers`", "SELECT id FROM SHOP.customers"):
        assert isinstance(safety.check_uncached(sql, "mysql", exact), PolicyViolation), sql
        assert not isinstance(safety.check_uncached(sql, "mysql", loose), PolicyViolation), sql
    assert not isinstance(safety.check_uncached("SELECT id FROM shop.customers", "mysql", exact), PolicyViolation)
    # Which table a denied column protects stays case-insensitive: protecting more is safe.
    guarded = exact.model_copy(update={"allowed_tables": ("Customers", "customers"),
                                       "denied_columns": ("Customers.ssn",)})
    assert safety.check_uncached("SELECT ssn FROM customers", "mysql", guarded).code == "COLUMN_NOT_ALLOWED"  # type: ignore[union-attr]
    variant = profiles.for_policy(profiles.get("mysql"), True)
    assert variant is profiles.for_policy(profiles.get("mysql"), True)  # one variant: caches stay warm
    assert variant.name == "mysql"


# ------------------------------------------------------------------------ redaction

@pytest.mark.parametrize(("message", "secret"), [
    ('duplicate key value violates unique constraint "k"\nDETAIL:  Key (name, ssn)=(Bob, 123-45) already exists. '
     "(SQLSTATE 23505)", "123-45"),
    ('null value in column "name"\nDETAIL:  Failing row contains (1, null, 123-45). (SQLSTATE 23502)', "123-45"),
    ("Duplicate entry 'Bob-123-45' for key 'name_ssn' (error 1062)", "123-45"),
    # a value that itself looks like the end of the message
    ("Duplicate entry 'x' for key 'y-123-45' for key 'name_ssn' (error 1062)", "123-45"),
    ("DETAIL:  Key (name, ssn)=(x) already exists, 123-45) already exists. (SQLSTATE 23505)", "123-45"),
    ('invalid input syntax for type integer: "123-45" (SQLSTATE 22P02)', "123-45"),
    # an exclusion constraint quotes the other row's key too
    ('conflicting key value violates exclusion constraint "ex"\nDETAIL:  Key (ssn)=(A) conflicts with '
     "existing key (ssn)=(123-45). (SQLSTATE 23P01)", "123-45"),
    # a row no partition takes (lower-case "failing row")
    ('no partition of relation "p" found for row\nDETAIL:  Partition key of the failing row contains '
     "(name, ssn) = (Bob, 123-45). (SQLSTATE 23514)", "123-45"),
    # a DETAIL text of no known shape is masked whole
    ('new row violates something\nDETAIL:  Some future format quoting 123-45 somewhere. (SQLSTATE 23514)', "123-45"),
])
def test_redaction_removes_quoted_values(message: str, secret: str) -> None:
    redacted = redact_text(message)
    assert secret not in redacted and MASK in redacted
    assert "SQLSTATE" in redacted or "error" in redacted


def test_redaction_keeps_names() -> None:
    text = "Data too long for column 'name' at row 1"
    assert redact_text(text) == text
    assert 'constraint "k"' in redact_text('violates unique constraint "k"\nDETAIL:  Key (id)=(1) already exists.')


# ------------------------------------------------------------------- properties

_names = st.lists(st.sampled_from(["a", "b", "e", "s", "x", "y", "z", "q"]), min_size=1, max_size=5, unique=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(aliases=_names, pick=st.integers(min_value=0, max_value=9), denied=st.booleans())
def test_alias_lists_resolve_by_position(aliases: list[str], pick: int, denied: bool) -> None:
    visible = list(aliases) + list(CUSTOMERS[len(aliases):])
    if len(aliases) > len(CUSTOMERS):
        return
    name = visible[pick % len(visible)]
    real = CUSTOMERS[visible.index(name)]
    sql = f"SELECT t.{name} FROM customers AS t({', '.join(aliases)})"
    expected = "COLUMN_NOT_ALLOWED" if denied and real == "ssn" else "allow"
    assert verdict(sql, denied=denied) == expected, sql
    # A name the alias list hid is no column of t: refused only where columns are denied.
    hidden = [c for c in CUSTOMERS[: len(aliases)] if c not in visible]
    if hidden:
        assert verdict(f"SELECT t.{hidden[0]} FROM customers AS t({', '.join(aliases)})",
                       denied=denied) == ("COLUMN_NOT_ALLOWED" if denied else "allow")


_items = st.sampled_from(["c.id", "c.name", "c.ssn", "o.total", "o.*", "c.*", "*", "count(*)", "ssn", "email"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(_items, min_size=1, max_size=3),
    parens=st.integers(min_value=0, max_value=3),
    dialect=st.sampled_from(["postgres", "mysql", "sqlite"]),
    denied=st.booleans(),
    swap=st.booleans(),
)
def test_parenthesised_joins(items: list[str], parens: int, dialect: str, denied: bool, swap: bool) -> None:
    left, right = ("customers c", "orders o") if not swap else ("orders o", "customers c")
    join = f"{left} JOIN {right} ON o.customer_id = c.id"
    for _ in range(parens):
        join = f"({join})"
    sql = f"SELECT {', '.join(items)} FROM {join}"
    reads_denied = any(i in ("c.ssn", "c.*", "*", "ssn") for i in items)
    expected = "COLUMN_NOT_ALLOWED" if denied and reads_denied else "allow"
    assert verdict(sql, dialect, denied=denied) == expected, sql


_whole = st.sampled_from(["to_jsonb({a})", "row_to_json({a})", "json_agg({a})", "array_agg({a})", "{a}::text",
                          "({a}).*", "ROW({a}.*)", "{a}", "to_jsonb({a}.*)", "({a}).name"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=_whole, protected=st.booleans(), denied=st.booleans(), alias=st.sampled_from(["c", "t", "x1"]))
def test_whole_row_references(shape: str, protected: bool, denied: bool, alias: str) -> None:
    table = "customers" if protected else "orders"
    sql = f"SELECT {shape.format(a=alias)} FROM {table} {alias}"
    outcome = verdict(sql, denied=denied)
    if protected and denied:
        assert outcome == "COLUMN_NOT_ALLOWED", sql
    else:
        assert outcome != "COLUMN_NOT_ALLOWED", sql


_inner = st.sampled_from(["c.name", "c.ssn", "name", "ssn", "c.email", "upper(c.ssn)", "count(*)", "c.id + 1"])
_wrappers = st.lists(st.sampled_from(["derived", "cte", "exists", "scalar", "in", "lateral"]), max_size=4)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inner=_inner, wrappers=_wrappers, dialect=st.sampled_from(["postgres", "mysql", "sqlite"]),
       denied=st.booleans())
def test_nesting_keeps_the_verdict_of_the_innermost_read(
    inner: str, wrappers: list[str], dialect: str, denied: bool
) -> None:
    """However a read of customers is wrapped (derived tables, CTEs, EXISTS, scalar and IN
    subqueries, LATERAL), the verdict is the innermost read's."""
    if dialect != "postgres":
        wrappers = [w for w in wrappers if w != "lateral"]
    sql = f"SELECT {inner} AS v FROM customers c"
    for number, wrapper in enumerate(wrappers):
        name = f"w{number}"
        if wrapper == "derived":
            sql = f"SELECT {name}.v FROM ({sql}) AS {name}"
        elif wrapper == "cte":
            sql = f"WITH {name} AS ({sql}) SELECT v FROM {name}"
        elif wrapper == "exists":
            sql = f"SELECT o.id AS v FROM orders o WHERE EXISTS ({sql})"
        elif wrapper == "scalar":
            sql = f"SELECT ({sql} LIMIT 1) AS v FROM orders o"
        elif wrapper == "in":
            sql = f"SELECT o.id AS v FROM orders o WHERE o.customer_id IN ({sql})"
        else:
            sql = f"SELECT {name}.v FROM orders o, LATERAL ({sql}) AS {name}"
    reads = "ssn" in inner
    expected = "COLUMN_NOT_ALLOWED" if denied and reads else "allow"
    assert verdict(sql, dialect, denied=denied) == expected, sql


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
@pytest.mark.parametrize("name", ["ſsn", "ｓsn", "śsn", "SſN", "ＳＳＮ", "s\u0301sn"])
def test_a_look_alike_of_a_denied_column_is_refused(dialect: str, name: str) -> None:
    """A database comparing names more loosely than ASCII (accent- or case-insensitive
    collations, compatibility forms) could read the denied column under a look-alike:
    names are compared folded (NFKD, no accents, case-folded), refused where they fold to it."""
    policy = Policy(allowed_tables=("customers",), denied_columns=("customers.ssn",),
                    table_columns=("customers\x1fid\x1fname\x1fssn",))
    outcome = safety.check_uncached(f"SELECT {name} FROM customers", dialect, policy)
    assert isinstance(outcome, PolicyViolation) and outcome.code == "COLUMN_NOT_ALLOWED", name
    fine = safety.check_uncached("SELECT name AS ñame FROM customers ORDER BY ñame", dialect, policy)
    assert not isinstance(fine, PolicyViolation)
