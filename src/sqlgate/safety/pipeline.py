"""The validator's per-statement pipeline: ``RULES``, a tuple of small pure rules.

Like sqlglot's optimizer ``RULES``: ``prepare`` turns one parsed statement into a
``Subject`` (the statement an EXPLAIN/DESCRIBE wraps, its kind, the dialect's safety
profile, the policy and its parsed whitelist), then each rule looks at the subject and
either raises ``PolicyViolation`` or returns the ``Facts`` it learned (whether it writes,
the tables it touches, its placeholders). Rules run in order; the first denial wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from sqlglot import exp

from sqlgate.errors import PolicyViolation
from sqlgate.safety import columns, cost, explain, functions, parse, rules, tables
from sqlgate.safety.policy import Policy
from sqlgate.safety.profiles import SafetyProfile
from sqlgate.safety.tables import TableName


# NamedTuples, not frozen dataclasses: immutable too, and several times cheaper to build
# (two of them per statement on the uncached path).
class Subject(NamedTuple):
    """One statement under check and everything a rule may need to judge it."""

    statement: exp.Expr
    """The statement as parsed (an EXPLAIN stays an EXPLAIN)."""
    inner: exp.Expr
    """The statement the rules judge: the one EXPLAIN/DESCRIBE wraps, else ``statement``."""
    explain_prefix: str
    """``EXPLAIN <options> `` when ``statement`` is an opaque EXPLAIN, else empty."""
    kind: str
    profile: SafetyProfile
    policy: Policy
    whitelist: frozenset[TableName]

    @property
    def explains(self) -> bool:
        return bool(self.explain_prefix) or self.inner is not self.statement


class Facts(NamedTuple):
    """What a rule learned about an allowed statement."""

    writes: bool = False
    tables: tuple[TableName, ...] = ()
    parameters: tuple[str, ...] = ()


Rule = Callable[[Subject], "Facts | None"]

_WRITES = Facts(True, (), ())


def prepare(
    statement: exp.Expr, profile: SafetyProfile, policy: Policy, whitelist: frozenset[TableName]
) -> Subject:
    """Unwrap EXPLAIN/DESCRIBE and find the statement kind (or deny it)."""
    prefix = ""
    inner = statement
    if isinstance(statement, exp.Command) and str(statement.this).upper() == "EXPLAIN":
        options, rest = explain.split_explain(statement, profile)
        inner_statements = parse.parse(rest, profile)
        if len(inner_statements) != 1:
            raise PolicyViolation(
                "EXPLAIN must be followed by exactly one statement",
                "split it into separate calls",
                code="MULTI_STATEMENT",
            )
        inner = rules.unwrap(inner_statements[0])
        prefix = f"EXPLAIN {options} ".replace("  ", " ")
        if inner.find(exp.Placeholder, exp.Parameter) is not None:
            # The EXPLAIN reaches the driver as opaque text: its placeholders cannot
            # be bound, so refuse clearly instead of failing inside the database.
            raise PolicyViolation(
                "EXPLAIN with :name parameters is not supported here",
                "use the query_optimization tool (it takes parameters), or put literal "
                "values in the EXPLAINed query",
                code="STATEMENT_NOT_ALLOWED",
            )
    elif isinstance(statement, exp.Describe):
        explain.check_describe(statement)
        inner = statement.this
    describes_table = isinstance(statement, exp.Describe) and isinstance(statement.this, exp.Table)
    kind = "describe" if describes_table else rules.statement_kind(inner)
    return Subject(statement, inner, prefix, kind, profile, policy, whitelist)


# ---------------------------------------------------------------------------- the rules

def hidden_effects(subject: Subject) -> None:
    """DDL, INTO, locks in read_only, session assignments, opaque commands inside a statement."""
    rules.check_hidden_effects(subject.inner, subject.policy)


def write_mode(subject: Subject) -> Facts | None:
    """Writes only in read_write mode."""
    return _WRITES if rules.check_mode(subject.inner, subject.kind, subject.policy) else None


def bounded_writes(subject: Subject) -> None:
    """UPDATE/DELETE name their rows (unless the policy allows unbounded writes)."""
    rules.check_unbounded_write(subject.inner, subject.kind, subject.policy)


def allowed_functions(subject: Subject) -> None:
    """No function the dialect's profile or the policy denies."""
    policy = subject.policy
    functions.check_functions(subject.inner, subject.profile, policy.allowed_functions, policy.denied_functions,
                              timeout_ms=policy.statement_timeout_ms)


def allowed_tables(subject: Subject) -> Facts:
    """Every real table referenced is whitelisted."""
    names = tables.referenced_tables(subject.inner, subject.profile)
    tables.check_tables(names, subject.whitelist, subject.policy.default_schema, subject.profile)
    return Facts(False, tuple(names), ())


def allowed_columns(subject: Subject) -> None:
    """No denied column is read, directly, through ``*`` or as a whole row."""
    policy = subject.policy
    columns.check_columns(
        subject.inner, subject.profile, policy.denied_columns, policy.default_schema, policy.table_columns
    )


def named_placeholders(subject: Subject) -> Facts | None:
    """``:name`` placeholders (PostgreSQL also reads ``%(name)s`` as one), or the dialect's
    positional ones (``$1`` on PostgreSQL, ``?`` on SQLite and MySQL), never both.

    Positional placeholders are named by their number (``"1"``, ``"2"``; ``?`` in text
    order) so the verdict and the drivers handle both styles alike.
    """
    profile = subject.profile
    dialect = profile.sqlglot_dialect
    names: list[str] = []
    positional: set[str] = set()
    unnumbered = 0
    for node in subject.inner.find_all(exp.Placeholder, exp.Parameter):
        name = node.name if isinstance(node, exp.Placeholder) and not node.args.get("jdbc") else ""
        if name and (name[0].isalpha() or name[0] == "_"):
            if name not in names:
                names.append(name)
            continue
        written = node.sql(dialect, comments=False)
        style = profile.positional_placeholder
        if style == "?" and isinstance(node, exp.Placeholder) and name in ("", "?") and written == "?":
            unnumbered += 1
            continue
        if (style == "$1" and isinstance(node, exp.Parameter) and isinstance(node.this, exp.Literal)
                and str(node.this.this).isdigit() and int(node.this.this) > 0):
            positional.add(str(int(node.this.this)))
            continue
        if profile.variables_as_parameters and isinstance(node, exp.Parameter):
            raise PolicyViolation(
                f"session and system variables ({written}) are not available",
                "use :name placeholders for values and pass them in `parameters`",
                code="STATEMENT_NOT_ALLOWED",
            )
        raise PolicyViolation(
            f"placeholder {written} is not supported on {profile.name}",
            f"write positional placeholders as {style} (values in `parameters` as an array) or "
            "named ones like :customer_id (values as an object)",
            code="PARSE_ERROR",
        )
    if names and (positional or unnumbered):
        raise PolicyViolation(
            "the query mixes :name and positional placeholders",
            "use one style: :name with `parameters` as an object, or "
            f"{profile.positional_placeholder} with `parameters` as an array",
            code="PARSE_ERROR",
        )
    if unnumbered:
        names = [str(i) for i in range(1, unnumbered + 1)]
    elif positional:
        names = sorted(positional, key=int)
    if profile.bare_parameter_prefixes:
        for column in subject.inner.find_all(exp.Column):
            ident = column.this
            if (isinstance(ident, exp.Identifier) and not ident.quoted
                    and str(ident.this)[:1] in profile.bare_parameter_prefixes):
                raise PolicyViolation(
                    f"placeholder {ident.this} is not supported on {profile.name}",
                    f"write positional placeholders as {profile.positional_placeholder} (values in "
                    "`parameters` as an array) or named ones like :customer_id (values as an object)",
                    code="PARSE_ERROR",
                )
    return Facts(False, (), tuple(names)) if names else None


RULES: tuple[Rule, ...] = (
    hidden_effects,
    write_mode,
    bounded_writes,
    allowed_functions,
    allowed_tables,
    allowed_columns,
    named_placeholders,
    cost.bounded_cost,
)


def run(subject: Subject) -> Facts:
    """Every rule over ``subject``, in order; the first denial raises."""
    writes = False
    touched: tuple[TableName, ...] = ()
    parameters: tuple[str, ...] = ()
    for rule in RULES:
        facts = rule(subject)
        if facts is None:
            continue
        # Each rule reports its own facts once (named_placeholders de-duplicates its names).
        writes = writes or facts.writes
        touched += facts.tables
        parameters += facts.parameters
    return Facts(writes, touched, parameters)


__all__ = ["RULES", "Facts", "Rule", "Subject", "prepare", "run"]
